"""Buffers kept from one call to the next, for the streaming e-prop path.

Streaming e-prop works through a batch in fixed-size chunks, so every call needs the same
set of chunk-sized buffers (transforms, currents, membrane and spike traces). Fresh large
tensors cost page faults on first touch, comparable to the arithmetic done in them on a CPU;
kept buffers cost them once. A buffer is named by its owner's ``slot`` (e.g.
``("eprop", layer)``), a name and the calling thread, so two owners, or two threads, never
share one; asking for a name with another shape, dtype or device replaces the buffer (so a
smaller last batch, or evaluation at another batch size, does not pile up copies: at most
one buffer per name is kept). The least recently used are dropped beyond :data:`MAX_KEPT`;
:func:`clear` frees them all.

A kept buffer holds whatever its last user wrote: owners overwrite or zero it before use, and
never return it to a caller that could keep it past the next call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch

MAX_KEPT = 64
"""How many buffers are kept (least recently used dropped first)."""

_KEPT: OrderedDict[tuple, torch.Tensor] = OrderedDict()


def kept(slot: object, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised buffer of ``shape`` with ``like``'s dtype and device: the same one on
    every call with the same slot, name and thread while shape, dtype and device stay the
    same (a new one, replacing it, when they change). ``slot`` None gives a fresh tensor every
    time."""
    shape = tuple(int(s) for s in shape)
    if slot is None:
        return like.new_empty(shape)
    key = (slot, name, threading.get_ident())
    buf = _KEPT.get(key)
    if (buf is None or tuple(buf.shape) != shape or buf.dtype != like.dtype
            or buf.device != like.device):
        _KEPT.pop(key, None)  # free the old one before allocating its replacement
        buf = _KEPT[key] = like.new_empty(shape)
        while len(_KEPT) > MAX_KEPT:
            _KEPT.popitem(last=False)
    else:
        _KEPT.move_to_end(key)
    return buf


def clear() -> None:
    """Drop every kept buffer (frees their memory)."""
    _KEPT.clear()


def kept_bytes() -> int:
    """Memory held by kept buffers, in bytes."""
    return sum(t.numel() * t.element_size() for t in _KEPT.values())
