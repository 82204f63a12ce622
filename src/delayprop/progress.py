"""Progress reports that suit where they go: a tqdm bar on a terminal, periodic plain lines
otherwise (a file, a pipe, a job log), so redirected output holds no carriage-return frames.

``progress_bar(iterable, total=..., desc=..., enabled=...)`` returns either; both support
iteration, ``update(n)``, ``set_postfix(**kw)``, ``close()`` and ``with``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Iterable, Iterator

#: Seconds between two plain progress lines (``$DELAYPROP_PROGRESS_INTERVAL`` overrides).
LINE_INTERVAL = 30.0


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _interval() -> float:
    env = os.environ.get("DELAYPROP_PROGRESS_INTERVAL", "").strip()
    try:
        return max(0.0, float(env)) if env else LINE_INTERVAL
    except ValueError:
        return LINE_INTERVAL


def _size(n: float, unit: str, scale: bool) -> str:
    """``n`` as text; with ``scale``, in k/M/G units (bytes: '12.3 MB')."""
    if not scale:
        return f"{n:g}"
    prefix = ""
    for p in ("k", "M", "G"):
        if abs(n) < 1000:
            break
        n, prefix = n / 1000.0, p
    return f"{n:.1f} {prefix}{unit}" if prefix else f"{n:.0f} {unit}"


class LineProgress:
    """Progress as one plain line every ``interval`` seconds (and, with ``final_line``, one
    at the end): ``desc: 120/255 batch (47%), loss=0.53, 12 s``."""

    def __init__(self, iterable: Iterable | None = None, total: float | None = None,
                 desc: str = "", unit: str = "it", unit_scale: bool = False,
                 file: IO[str] | None = None, interval: float | None = None,
                 final_line: bool = False) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.unit_scale = total, desc, unit, unit_scale
        self.file = file
        self.interval = _interval() if interval is None else float(interval)
        self.final_line = final_line
        self.n = 0.0
        self.postfix = ""
        self.t0 = self._last = time.monotonic()
        self.closed = False
        self._shown: tuple | None = None

    def _text(self) -> str:
        done = _size(self.n, self.unit, self.unit_scale)
        if self.total:
            total = _size(self.total, self.unit, self.unit_scale)
            what = f"{done}/{total}" + ("" if self.unit_scale else f" {self.unit}")
            what += f" ({100.0 * self.n / self.total:.0f}%)"
        else:
            what = done + ("" if self.unit_scale else f" {self.unit}")
        parts = [f"{self.desc}: {what}" if self.desc else what]
        if self.postfix:
            parts.append(self.postfix)
        parts.append(f"{time.monotonic() - self.t0:.0f} s")
        return ", ".join(parts)

    def _emit(self) -> None:
        print(self._text(), file=self.file or sys.stderr, flush=True)
        self._last = time.monotonic()
        self._shown = (self.n, self.postfix)

    def update(self, n: float = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._emit()

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        if not self.closed and self.final_line and self._shown != (self.n, self.postfix):
            self._emit()
        self.closed = True

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            return
        for item in self.iterable:
            yield item
            self.update(1)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None,
                 desc: str = "", unit: str = "it", unit_scale: bool = False,
                 enabled: bool = True, file: IO[str] | None = None, leave: bool = False,
                 final_line: bool = False) -> Any:
    """A tqdm bar when ``file`` (default stderr) is a terminal, else a :class:`LineProgress`;
    with ``enabled=False`` a silent tqdm. ``final_line`` (plain lines only): also report at
    the end."""
    from tqdm import tqdm

    stream = sys.stderr if file is None else file
    if enabled and not is_terminal(stream):
        return LineProgress(iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale,
                            file=stream, final_line=final_line)
    return tqdm(iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale,
                disable=not enabled, file=stream, leave=leave, dynamic_ncols=True)
