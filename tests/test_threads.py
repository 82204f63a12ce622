"""delayprop.threads: train.threads = 0 picks one thread for a small network."""

from __future__ import annotations

import torch

from delayprop.threads import SMALL_SYNAPSES, hidden_synapses, pick_threads
from delayprop.train import resolve_config, train


def test_pick_threads():
    timing = resolve_config({"data": {"dataset": "timing"}, "train": {"threads": 0}})
    assert hidden_synapses(timing) == 10 * 64 and pick_threads(timing) == 1
    shd = resolve_config({"model": {"n_hidden": [100]}})
    assert hidden_synapses(shd) == 140 * 100 and pick_threads(shd) == 0  # torch's default
    tiny = resolve_config({"model": {"n_hidden": [32]}, "data": {"channels": 70}})
    assert hidden_synapses(tiny) == 70 * 32 and pick_threads(tiny) == 1
    rec = resolve_config({"model": {"n_hidden": [256], "recurrent": True}})
    assert hidden_synapses(rec) == 140 * 256 + 256 * 256 > SMALL_SYNAPSES
    assert pick_threads(rec) == 0  # torch's default
    assert pick_threads(resolve_config({"method": {"name": "dcls"}})) == 0
    assert pick_threads(resolve_config({"data": {"dataset": "timing"},
                                        "train": {"threads": 3}})) == 3
    assert hidden_synapses({"model": {}, "data": {}}) is None
    assert pick_threads({"model": {}, "data": {}}) == 0


def test_train_uses_one_thread_for_a_small_network(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cfg = resolve_config({"data": {"dataset": "timing"},
                              "train": {"epochs": 1, "threads": 0}})
        train(cfg, tmp_path / "run", progress=False, plots=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
