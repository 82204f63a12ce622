"""Experiments declared as data, their runner and their results table.

* :mod:`.spec`: an experiment file (``experiments/NAME.toml``) -> one :class:`RunSpec` per
  (entry, protocol, seed);
* :mod:`.runner`: train what is missing (in this process, in ``jobs`` processes or on Ray),
  resume what is partial, skip what is finished; every finished run becomes a record;
* :mod:`.records`: compact run records (``results/records/NAME.jsonl``);
* :mod:`.table`: ``results/results.csv``, per-experiment summaries with t intervals and
  Welch differences, figures and the README table;
* :mod:`.stats`: the small-sample statistics behind them.
"""

from .records import load_records, record_from_run_dir, save_records
from .runner import execute, run_experiment, status_of
from .spec import Experiment, RunSpec, load_experiment, plan
from .table import CSV_COLUMNS, describe

__all__ = [
    "CSV_COLUMNS",
    "Experiment",
    "RunSpec",
    "describe",
    "execute",
    "load_experiment",
    "load_records",
    "plan",
    "record_from_run_dir",
    "run_experiment",
    "save_records",
    "status_of",
]
