"""How much memory a setting needs, checked before allocating it.

A setting that needs more memory than the machine has (``--max-delay 1000000``, a hidden layer
of 2**31 neurons, ``data prepare --max-time 1000`` on SHD) is refused with the figure before
anything is allocated, instead of ending in an allocation traceback or the kernel's OOM killer:

    needs 29.6 GiB (...); this machine has 23.0 GiB (set DELAYPROP_MAX_MEMORY to change the
    limit)

The limit is the machine's physical memory (``os.sysconf``; for a CUDA device the device's
memory), or ``$DELAYPROP_MAX_MEMORY`` (bytes, or with a suffix K, M, G, T: ``64G``; ``0`` or
``off`` turns the check off). The estimates are upper bounds of the large tensors only, meant
to catch settings that cannot fit, not to predict the peak to the byte.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from delayprop.errors import ConfigError

ENV = "DELAYPROP_MAX_MEMORY"
GiB = float(1 << 30)


def physical_memory() -> Optional[int]:
    """Bytes of physical memory of this machine (None where os.sysconf cannot tell)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return int(pages) * int(size) if pages > 0 and size > 0 else None


def _parse(text: str) -> Optional[int]:
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not m:
        raise ConfigError(f"${ENV} must be a number of bytes, e.g. 64G, or 0 / off, got "
                          f"{text!r}")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


def memory_limit(device: str = "cpu") -> tuple[Optional[int], str]:
    """(bytes allowed or None for no check, what the figure is)."""
    env = os.environ.get(ENV, "").strip()
    if env:
        if env.lower() in ("0", "off", "none", "no"):
            return None, ""
        return _parse(env), f"${ENV} allows"
    if str(device).startswith("cuda"):
        try:
            import torch

            dev = torch.device(device)
            idx = dev.index if dev.index is not None else torch.cuda.current_device()
            return int(torch.cuda.get_device_properties(idx).total_memory), \
                f"{device} has"
        except Exception:  # no CUDA: the device check reports it
            return None, ""
    return physical_memory(), "this machine has"


def gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB" if n >= 0.1 * GiB else f"{n / (1 << 20):.1f} MiB"


def check_memory(needed: float, what: str, device: str = "cpu",
                 error: type[Exception] = ConfigError) -> None:
    """Raise ``error`` naming ``what`` if ``needed`` bytes exceed the limit."""
    limit, says = memory_limit(device)
    if limit is None or needed <= limit:
        return
    raise error(f"{what} needs {gib(needed)}; {says} {gib(limit)} (set {ENV} to change the "
                f"limit, 0 to turn the check off)")
