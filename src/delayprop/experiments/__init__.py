"""The paper's experiments as grids of configuration files, and the results table.

* ``paper``: {ff, rec} x {weights, syn, ax, both} x {eprop, bptt}, ``configs/<arch>_<delays>_
  <method>.toml`` (16 runs per seed);
* ``must-show``: the four SHD runs (a)-(d) of issue 4, ``configs/shd_<x>_*.toml``.

:func:`run_grid` trains every (configuration, seed) in ``<out>/<dataset>/<name>/seed<k>``,
skipping finished runs and resuming killed ones; :func:`write_results` writes
``<out>/results.csv`` and the table inside ``<out>/RESULTS.md``.
"""

from .grid import GRIDS, RunSpec, config_dir, grid_configs, run_dir_for, run_grid
from .table import CSV_COLUMNS, collect_rows, describe, write_results

__all__ = [
    "CSV_COLUMNS",
    "GRIDS",
    "RunSpec",
    "collect_rows",
    "config_dir",
    "describe",
    "grid_configs",
    "run_dir_for",
    "run_grid",
    "write_results",
]
