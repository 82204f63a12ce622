"""Training: a resolved configuration in, a run directory with metrics and models out.

The package reads in the order a run uses it:

* :mod:`~delayprop.training.config`: the options of a run, their defaults and meaning, reading
  (TOML), resolving (defaults <- dataset preset <- file <- flags) and checking them;
* :mod:`~delayprop.training.methods`: the :class:`~delayprop.training.methods.Method`
  interface (optimisers, training step, epoch hook, prediction, loss, selection rule) and its
  implementations e-prop, BPTT and DCLS;
* :mod:`~delayprop.training.splits`: the dataset with its validation split held out;
* :mod:`~delayprop.training.evaluation`: accuracy and loss on a split, per class and speaker;
* :mod:`~delayprop.training.checkpoint` and :mod:`~delayprop.training.rundir`: what a run
  saves and where;
* :mod:`~delayprop.training.loop`: :func:`~delayprop.training.loop.train`, which drives a
  method through the epochs without knowing which one it is.

It rests on the models (:mod:`delayprop.layers`, :mod:`delayprop.baselines`), the learning
rules (:mod:`delayprop.rules`) and the data (:mod:`delayprop.data`); the command line
(:mod:`delayprop.cli`) and the experiments rest on it. :mod:`delayprop.train` re-exports its
public names where they were before the package existed.
"""

from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint
from delayprop.training.config import (
    DEFAULTS,
    METHODS,
    OPTION_DOCS,
    RUNTIME_OPTIONS,
    SECTIONS,
    config_difference,
    load_config,
    resolve_config,
)
from delayprop.training.evaluation import EvalResult, evaluate, seen_unseen
from delayprop.training.loop import train
from delayprop.training.methods import METHOD_CLASSES, Method
from delayprop.training.rundir import BEST, CHECKPOINT, CONFIG, FINAL, INIT, LOG, METRICS
from delayprop.training.splits import Splits, load_splits, split_datasets

__all__ = [
    "BEST", "CHECKPOINT", "CONFIG", "DEFAULTS", "EvalResult", "FINAL", "INIT", "LOG",
    "METHODS", "METHOD_CLASSES", "METRICS", "Method", "OPTION_DOCS", "RUNTIME_OPTIONS",
    "SECTIONS", "Splits", "config_difference", "evaluate", "load_checkpoint", "load_config",
    "load_splits", "model_from_checkpoint", "resolve_config", "seen_unseen", "split_datasets",
    "train",
]
