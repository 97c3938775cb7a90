"""What a person sees and does while a model trains: the progress bar and Ctrl-C.

:class:`Progress` draws a live bar on a terminal and one line per epoch otherwise;
:class:`StopFlag` turns the first Ctrl-C into a request to stop after the current batch.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

__all__ = ["Progress", "StopFlag"]


class Progress:
    """A live bar on a terminal; one line per epoch otherwise (or nothing when verbose=0)."""

    def __init__(self, verbose: int, epochs: int, n_batches: int, stream=None):
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.live = verbose >= 1 and getattr(self.stream, "isatty", lambda: False)()
        self.epochs = epochs
        self.n_batches = n_batches
        self._last = 0.0

    def batch(self, epoch: int, b: int, loss: float, seen: int, t0: float) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and b + 1 < self.n_batches:
            return
        self._last = now
        elapsed = now - t0
        frac = (b + 1) / self.n_batches
        eta = elapsed / frac - elapsed
        width = 24
        filled = int(width * frac)
        bar = "=" * filled + (">" if filled < width else "") + "." * (width - filled - 1)
        self.stream.write(
            f"\rEpoch {epoch + 1}/{self.epochs} [{bar}] {b + 1}/{self.n_batches} "
            f"loss {loss:.4f}  {seen / max(elapsed, 1e-9):,.0f} samples/s  ETA {eta:4.1f}s "
        )
        self.stream.flush()

    def epoch(self, epoch: int, logs: dict, threads: int | None = None) -> None:
        """The epoch's line; ``threads``, the BLAS threads measured fastest, ends it."""
        if self.verbose < 1:
            return
        parts = [f"Epoch {epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if logs.get(key) is not None:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{logs['samples_per_second']:,.0f} samples/s")
        parts.append(f"{logs['time']:.2f}s")
        if threads is not None:
            parts.append(f"{threads} BLAS thread{'s' if threads > 1 else ''}")
        line = "  ".join(parts)
        self.stream.write(("\r" + line + " " * 20 + "\n") if self.live else line + "\n")
        self.stream.flush()


class StopFlag:
    """Ctrl-C during fit: finish the current batch, then stop (a second Ctrl-C aborts at once)."""

    def __init__(self):
        self.stop = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.stop:  # second Ctrl-C
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
