"""What a run saves of a model and how it comes back: checkpoints, model snapshots, RNG state.

* ``checkpoint.pt`` (:func:`checkpoint_state`, written after every epoch): format 1, the
  resolved configuration, the fitted model configuration, the epochs completed, the network's
  parameters, the optimisers' and schedulers' states, the Python / NumPy / torch RNG states,
  and the loop's state (history, best validation, wall time, data identity, the weight average).
* ``init.pt`` and ``best.pt`` (:func:`model_snapshot`): configuration, model configuration,
  parameters, epoch and data identity, the model alone.

:func:`load_checkpoint` reads either kind (checksum-verified), :func:`model_from_checkpoint`
rebuilds the :class:`~delayprop.training.methods.Method` it holds.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delayprop import safety
from delayprop.errors import ConfigError, CorruptFileError
from delayprop.fileio import torch_load_checked
from delayprop.training.methods import Method, Optimization


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global generators' states (Python, NumPy, torch CPU)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def model_snapshot(method: Method, parameters: dict[str, torch.Tensor], epoch: int,
                   data: Any) -> dict[str, Any]:
    """The contents of ``init.pt`` / ``best.pt``: ``parameters`` (a state dict of
    ``method.net``) after ``epoch`` epochs, with what rebuilds the model."""
    return {"config": method.cfg, "model_config": method.model_cfg, "model": parameters,
            "epoch": epoch, "data": data}


def checkpoint_state(method: Method, optimization: Optimization, epoch: int,
                     state: dict[str, Any]) -> dict[str, Any]:
    """The contents of ``checkpoint.pt`` after ``epoch`` completed epochs; ``state`` adds the
    loop's own (history, best_val, best_epoch, best_val_loss, wall_s, data, ema)."""
    return {
        "format": 1,
        "config": method.cfg,
        "model_config": method.model_cfg,
        "epoch": epoch,  # epochs completed
        "model": method.net.state_dict(),
        **optimization.state_dict(),  # "optimizers", "schedulers"
        "rng": rng_state(),
        **state,
    }


def load_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load a checkpoint written by :func:`~delayprop.training.loop.train` (CPU
    tensors), after verifying its sha256 (a mismatch is a
    :class:`~delayprop.errors.CorruptFileError`; a checkpoint written before checksums loads
    with a warning)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such checkpoint")
    try:
        ckpt, verified = torch_load_checked(p, weights_only=False)
    except CorruptFileError:
        raise
    except Exception as exc:  # corrupted or not a checkpoint
        why = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{p}: not a readable checkpoint: truncated or corrupt, or not a "
                          f"delayprop checkpoint ({p.stat().st_size} bytes, no checksum "
                          f"trailer at its end; {type(exc).__name__}: {why})") from None
    if verified is None:
        safety.warn(f"{p} has no checksum (written by an older delayprop); not verified")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str = "cpu") -> Method:
    """Rebuild the :class:`~delayprop.training.methods.Method` a checkpoint
    (``checkpoint.pt``, ``best.pt`` or ``init.pt``) stores."""
    cfg = ckpt["config"]
    mc = ckpt["model_config"]
    model = Method(cfg, mc["n_in"], mc["n_out"], torch.device(device))
    model.net.load_state_dict(ckpt["model"])
    return model
