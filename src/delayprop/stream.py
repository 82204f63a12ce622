"""The forward pass in chunks, without autograd: what streaming e-prop and inference run.

:class:`ForwardStream` advances a :class:`~delayprop.layers.DelayNet` (or any network of
:mod:`delayprop.blocks` with the same shape, :class:`LayerStack`) over a sequence chunk
by chunk (time-major), carrying between chunks only what the next chunk needs: each layer's
LIF state (and recurrent delay line), the last window - 1 steps of each feedforward input,
and the leaky readout's state. Feedforward synapse groups on the spectral route run as
:class:`~delayprop.delays.SpectralStream` (one transform per chunk; with ``traces`` it also
keeps the spectrum of the leaky-filtered input for e-prop's eligibility correlation).
Memory is bounded by the chunk length, not the sequence length.

:func:`forward_streaming` is the no-autograd ``DelayNet.forward`` (outputs only).

This module sits between the blocks and the network: it uses :mod:`delayprop.blocks` and
:mod:`delayprop.delays`, and :mod:`delayprop.layers` uses it (``DelayNet.forward`` without
autograd runs :func:`forward_streaming`), so it names the network only through
:class:`LayerStack`.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
from torch.nn import functional as F

from delayprop.blocks import (
    DelayedSynapses,
    LIFCarry,
    LIFLayer,
    Readout,
    integrate_tm,
    leaky_filter_tm,
)
from delayprop.delays import SpectralStream, delayed_sum, even_chunk, use_spectral
from delayprop.errors import ConfigError


class LayerStack(Protocol):
    """What the chunked forward pass needs of a network (:class:`~delayprop.layers.DelayNet`
    has it): hidden LIF layers in order, a readout, the spikes a layer passes on, and its
    synapse groups."""

    layers: Sequence[LIFLayer]
    readout: Readout

    def outgoing(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """The spikes z (..., B, n) of hidden layer ``layer`` as the next layer sees them."""
        ...

    def synapses(self) -> list[tuple[str, DelayedSynapses]]:
        """Every synapse group with its module name."""
        ...


def tail_of(prev: torch.Tensor | None, new: torch.Tensor, lag: int) -> torch.Tensor | None:
    """The last ``lag`` steps of the time-major signal prev ++ new (a copy, so the chunk can
    be freed), or None when lag is 0. ``prev`` None means zeros before ``new``."""
    if lag == 0:
        return None
    if new.shape[0] >= lag:
        return new[-lag:].clone()
    front = prev if prev is not None else new.new_zeros(lag, *new.shape[1:])
    return torch.cat([front, new], 0)[-lag:].clone()


def default_chunk(net: LayerStack, steps: int) -> int:
    """Equal chunks of about the spectral block length of the widest synapse group."""
    return even_chunk(steps, max(s.window for _, s in net.synapses()))


def chunk_spans(steps: int, chunk: int) -> list[tuple[int, int]]:
    """[(t0, t1), ...] covering 0..steps in chunks of ``chunk`` steps."""
    if chunk < 1:
        raise ConfigError(f"chunk must be a positive number of steps, got {chunk}")
    return [(t0, min(t0 + chunk, steps)) for t0 in range(0, steps, chunk)]


class ForwardStream:
    """A DelayNet's forward pass, one time-major chunk at a time, without autograd.

    ``method`` picks the kernels (:func:`delayprop.delays.use_spectral`); ``traces`` makes
    each spectral stream keep its chunk's filtered-input spectrum (for
    :meth:`SpectralStream.correlate`); ``slot`` names the buffers kept between calls
    (:mod:`delayprop.workspace`; None: fresh buffers), and ``kept_lif`` puts the LIF traces v,
    z in kept buffers too: the tensors :meth:`step` returns are then valid until the next
    chunk. Parameters are read at construction; do not change them during a sequence.
    """

    def __init__(self, net: LayerStack, method: str = "auto", traces: bool = False,
                 slot: object = None, kept_lif: bool = False) -> None:
        self.net, self.method = net, method
        n = len(net.layers)
        w = net.readout.weight
        self.wks = [layer.ff.weighted_kernel().detach() for layer in net.layers]
        self.streams: list[SpectralStream | None] = [
            SpectralStream(self.wks[i], layer.lif.alpha, traces=traces,
                           slot=None if slot is None else (slot, i))
            if layer.ff.window > 1 and use_spectral(method, w.dtype, layer.ff.window)
            else None
            for i, layer in enumerate(net.layers)
        ]
        self.lif_slots = [(slot, i) if slot is not None and kept_lif else None
                          for i in range(n)]
        self.carry: list[LIFCarry | None] = [None] * n
        self.ff_tail: list[torch.Tensor | None] = [None] * n
        self.y_state: torch.Tensor | None = None
        # readout delays: its weighted kernel and the last window - 1 steps of its input
        r = net.readout
        self.readout_wk = r.weighted_kernel().detach() if r.has_delays else None
        self.readout_tail: torch.Tensor | None = None

    def chunk_input(self, x: torch.Tensor, t0: int, t1: int) -> torch.Tensor:
        """Steps t0..t1 of a batch-major input x (B, T, n_in), time-major, in the readout's
        dtype and device: written straight into the first stream's window if there is one."""
        w = self.net.readout.weight
        src = x[:, t0:t1].transpose(0, 1)
        if self.streams[0] is None:
            return src.to(device=w.device, dtype=w.dtype).contiguous()
        return self.streams[0].input_buffer(t1 - t0, x.shape[0], w).copy_(src)

    def step(self, x_c: torch.Tensor) -> tuple[torch.Tensor, list[tuple]]:
        """Advance over one chunk x_c (c, B, n_in). Returns the readout y (c, B, C) and per
        hidden layer (input, v, z, z of the step before or None without recurrence); z is
        before dropout (:meth:`DelayNet.outgoing`), the input after it."""
        net = self.net
        inp = x_c
        out = []
        for i, layer in enumerate(net.layers):
            stream = self.streams[i]
            if stream is not None:
                cur = stream.currents(inp)
            else:
                cur = delayed_sum(inp, self.wks[i], self.ff_tail[i], self.method)
                self.ff_tail[i] = tail_of(self.ff_tail[i], inp, layer.ff.window - 1)
            before = self.carry[i]
            v_c, z_c, self.carry[i] = integrate_tm(layer, cur, before, self.lif_slots[i])
            z_prev = None
            if layer.rec is not None:  # the recurrent synapses see the spikes one step late
                z_before = before.z if before is not None else z_c.new_zeros(z_c.shape[1:])
                z_prev = torch.cat([z_before.unsqueeze(0), z_c[:-1]], 0)
            out.append((inp, v_c, z_c, z_prev))
            inp = net.outgoing(i, z_c)  # z_c, or z_c times its dropout mask
        r = net.readout
        if self.readout_wk is not None:
            drive = r.biased(delayed_sum(inp, self.readout_wk, self.readout_tail, self.method))
            self.readout_tail = tail_of(self.readout_tail, inp, r.window - 1)
        else:
            drive = F.linear(inp, r.weight, r.bias)
        if r.kappa:
            drive, self.y_state = leaky_filter_tm(drive, r.kappa, self.y_state)
        return drive, out


@torch.no_grad()
def forward_streaming(net: LayerStack, x: torch.Tensor, chunk: int | None = None,
                      method: str = "auto", slot: object = "forward") -> torch.Tensor:
    """Outputs y (B, T, C) of ``net`` for x (B, T, n_in), chunk by chunk without autograd
    (the same numbers as ``net(x)`` with autograd, up to rounding)."""
    B, T, _ = x.shape
    w = net.readout.weight
    fwd = ForwardStream(net, method, slot=slot, kept_lif=True)
    y = w.new_empty(B, T, w.shape[0])
    for t0, t1 in chunk_spans(T, chunk or default_chunk(net, T)):
        y_c, _ = fwd.step(fwd.chunk_input(x, t0, t1))
        y[:, t0:t1].copy_(y_c.transpose(0, 1))
    return y
