"""The timing task: class only in relative timing; delays learn it, weights alone do not."""

import pytest
import torch

from delayprop.data.synthetic import timing_task
from delayprop.errors import ConfigError
from delayprop.train import Splits, resolve_config, train


def test_timing_task_carries_class_only_in_relative_timing():
    offsets = (-6, -3, 3, 6)
    ds = timing_task(400, offsets=offsets, steps=40, noise_channels=0, seed=1)
    assert ds.x.shape == (400, 40, 2) and ds.num_classes == 4
    # every sample: exactly one spike on A and one on B, whatever the class
    assert (ds.x.sum(1) == 1).all()
    t_a = ds.x[:, :, 0].float().argmax(1)
    t_b = ds.x[:, :, 1].float().argmax(1)
    assert torch.equal(t_b - t_a, torch.tensor(offsets)[ds.y])
    # absolute times overlap across classes (the time of A alone says nothing)
    for c in range(4):
        assert t_a[ds.y == c].min() <= 8 and t_a[ds.y == c].max() >= 25
    assert torch.equal(timing_task(50, seed=3).x, timing_task(50, seed=3).x)


@pytest.mark.parametrize("kw", [dict(n_samples=0), dict(n_samples=5, offsets=(1, 1)),
                                dict(n_samples=5, steps=5), dict(n_samples=5, noise_rate=1.5)])
def test_timing_task_bad_settings(kw):
    with pytest.raises(ConfigError):
        timing_task(**kw)


@pytest.mark.slow
def test_delays_learn_the_timing_task_and_weights_alone_do_not(tmp_path):
    offsets = (-6, 6)
    data = [timing_task(n, offsets=offsets, seed=k) for k, n in enumerate((800, 200, 400))]
    splits = Splits(*data, num_classes=2, class_names=data[0].class_names)
    acc = {}
    for delays in (False, True):
        cfg = resolve_config({
            "model": dict(n_hidden=[32], synaptic_delays=delays, max_delay=8, sigma=1.5,
                          tau_m=5.0, weight_scale=4.0, kappa=0.8),
            "method": dict(name="eprop"),
            "train": dict(epochs=6, batch_size=64, lr=1e-2, delay_lr=2.0),
            "data": dict(dataset="timing"),
        })
        final = train(cfg, tmp_path / str(delays), splits=splits, progress=False, plots=False)
        acc[delays] = final["test_acc"]
    assert acc[True] > 0.85
    assert acc[False] < 0.7
