"""The training loop's names where they have always been imported from.

Training lives in the :mod:`delayprop.training` package (configuration, methods, data splits,
evaluation, checkpoints, run directory, loop); this module re-exports its public names so that
``from delayprop.train import load_config, resolve_config, train, FINAL, ...`` keeps working.
``Model`` is the old name of :class:`~delayprop.training.methods.Method`:
``Model(cfg, n_in, n_out, device)`` builds the method ``cfg`` names.
"""

from delayprop.training.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from delayprop.training.config import (
    DEFAULTS,
    METHODS,
    OPTION_DOCS,
    RUNTIME_OPTIONS,
    SECTIONS,
    augment_of,
    check_config,
    config_difference,
    load_config,
    resolve_config,
    tomllib,
)
from delayprop.training.evaluation import EvalResult, evaluate, seen_unseen
from delayprop.training.loop import train
from delayprop.training.methods import Method, fit_model_config, param_groups, sigma_at
from delayprop.training.rundir import BEST, CHECKPOINT, CONFIG, FINAL, INIT, LOG, METRICS
from delayprop.training.splits import Splits, load_splits, split_datasets

Model = Method

__all__ = [
    "BEST", "CHECKPOINT", "CONFIG", "DEFAULTS", "EvalResult", "FINAL", "INIT", "LOG",
    "METHODS", "METRICS", "Method", "Model", "OPTION_DOCS", "RUNTIME_OPTIONS", "SECTIONS",
    "Splits", "augment_of", "check_config", "config_difference", "evaluate",
    "fit_model_config", "load_checkpoint", "load_config", "load_splits",
    "model_from_checkpoint", "param_groups", "resolve_config", "rng_state", "seed_everything",
    "seen_unseen", "set_rng_state", "sigma_at", "split_datasets", "tomllib", "train",
]
