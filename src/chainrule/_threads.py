"""BLAS threads during training: a count that is asked for, or the faster of one and all, measured.

OpenBLAS's threads wait for each other after every product. On a quiet machine a second thread
saves up to about a third of an epoch; on a machine where another process holds a core, a
product waits for a descheduled thread and training on two threads runs 2-6 times slower than
on one (20 times for small products). Which of the two holds depends on the machine and on what
else runs on it at the time, so :class:`BlasThreads` measures it on the training steps
themselves: a few steps on one thread and as many on all of BLAS's threads, alternated, and keeps
the setting whose median step is faster. A loop asks for a new measurement at the start of each
epoch (at most once per :attr:`BlasThreads.remeasure_after` seconds), so a machine that becomes
busy, or quiet, is followed. ``benchmarks/bench_threads.py`` times both cases.

The limits are set through threadpoolctl (``pip install "chainrule[threads]"``), imported only
here; without it the default leaves BLAS as it is and an explicit count is refused.
"""

from __future__ import annotations

import statistics
import time

from chainrule._checks import check_scalar

__all__ = ["BlasThreads", "check_threads"]

#: The most BLAS threads a caller may ask for (BLAS libraries cap far lower; a larger count is a
#: typing mistake, and would overflow the C integer they take).
MAX_THREADS = 4096

#: The clock the steps are timed with.
clock = time.perf_counter


def check_threads(threads, owner: str = "fit") -> int | None:
    """``threads`` (BLAS threads) as None or an int >= 1, else a ValueError naming the value."""
    return check_scalar(threads, "threads", owner, kind=int, low=1, high=MAX_THREADS,
                        allow_none=True)


class BlasThreads:
    """``with BlasThreads(threads) as blas:``, BLAS's threads for the block, restored on exit.

    ``threads=N`` runs the block's products on ``N`` threads. ``threads=None`` chooses between
    one thread and BLAS's own setting (all cores, unless the environment sets fewer): after
    :meth:`remeasure`, while :attr:`probing` is true, a loop brackets each step with
    :meth:`before` and :meth:`after`; the first step is a warm-up on one thread, the next
    ``2 * probes`` at most alternate between the two settings (fewer when one is at once
    :attr:`clear_ratio` times slower), and the faster median is kept (and named through
    ``report``, a callable taking one line, when it is given). ``owner`` names the caller in
    the error for a bad ``threads``. Without threadpoolctl an explicit count is refused, unless
    ``required=False``: then BLAS is left as it is (a speed-up where it can be had).

    >>> import numpy as np
    >>> with BlasThreads(None) as blas:
    ...     blas.remeasure()
    ...     while blas.probing:
    ...         blas.before()
    ...         _ = np.ones((64, 64)) @ np.ones((64, 64))
    ...         blas.after()
    >>> blas.choice is None or blas.choice >= 1
    True
    """

    #: Seconds between two measurements: a new epoch measures again once this much has passed.
    remeasure_after: float = 1.0
    #: A ratio of step times that decides at once (see :meth:`after`).
    clear_ratio: float = 1.5

    def __init__(self, threads: int | None = None, owner: str = "fit", probes: int = 3,
                 report=None, required: bool = True):
        self.explicit = check_threads(threads, owner)
        self.required = required
        self.probes = check_scalar(probes, "probes", "BlasThreads", kind=int, low=1)
        self.report = report
        self.choice: int | None = self.explicit
        self.probing = False
        self._libs: list = []
        self._saved: list[int] = []
        self._most = 1
        self._times: dict[int, list[float]] = {}
        self._plan: list[int] = []
        self._t0 = 0.0
        self._measured_at = -float("inf")

    def __enter__(self) -> BlasThreads:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            if self.explicit is None or not self.required:
                return self  # BLAS stays as it is
            raise ImportError(
                f"threads={self.explicit} needs threadpoolctl to set the BLAS threads; install it "
                'with `pip install threadpoolctl` (or "chainrule[threads]"), or leave threads '
                "unset."
            ) from None
        self._libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self._saved = [lib.num_threads for lib in self._libs]
        self._most = max(self._saved, default=1)
        if self.explicit is not None:
            self._set(self.explicit)
        elif self._most == 1:
            self.choice = 1
        return self

    def __exit__(self, *exc) -> bool:
        for lib, n in zip(self._libs, self._saved, strict=True):
            lib.set_num_threads(n)
        self.probing = False
        return False

    @property
    def adaptive(self) -> bool:
        """True when the threads are chosen by measurement (None asked, several to choose from)."""
        return self.explicit is None and bool(self._libs) and self._most > 1

    def remeasure(self) -> None:
        """Measure again over the next steps (unless the last measurement is recent)."""
        now = clock()
        if not self.adaptive or self.probing or now - self._measured_at < self.remeasure_after:
            return
        self._measured_at = now
        self._times = {1: [], self._most: []}
        # a warm-up step on one thread (the setting that costs least on a busy machine), then
        # one thread and all of them in turn
        self._plan = [-1] + [1, self._most] * self.probes
        self.probing = True

    def before(self) -> None:
        """Set the threads of the next measured step and start its clock."""
        self._set(abs(self._plan[0]))
        self._t0 = clock()

    def after(self) -> None:
        """Stop the step's clock; after the last measured step, keep the faster setting."""
        elapsed = clock() - self._t0
        threads = self._plan.pop(0)
        if threads > 0:  # the warm-up (-1) is not counted
            self._times[threads].append(elapsed)
        if not self._plan or self._clear():
            self._plan = []
            self.probing = False
            self._decide()

    def _clear(self) -> bool:
        """True once as many steps ran on each setting and every one on one side took more than
        :attr:`clear_ratio` times the slowest on the other: more steps would not change the
        choice, and each costs a slow step."""
        one, most = self._times[1], self._times[self._most]
        if not one or len(one) != len(most):
            return False
        return (min(one) > self.clear_ratio * max(most)
                or min(most) > self.clear_ratio * max(one))

    def _decide(self) -> None:
        medians = {n: statistics.median(t) for n, t in self._times.items() if t}
        best = min(medians, key=lambda n: (medians[n], n))
        self._set(best)
        if self.report is not None and best != self.choice:
            self.report(
                f"BLAS threads: {best} (a step took {medians[1] * 1e3:.2f} ms on 1 thread, "
                f"{medians[self._most] * 1e3:.2f} ms on {self._most})"
            )
        self.choice = best

    def _set(self, threads: int) -> None:
        for lib in self._libs:
            lib.set_num_threads(threads)
