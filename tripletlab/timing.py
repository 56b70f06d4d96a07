"""Wall-clock timing for the notebooks' speed comparisons and ``make bench``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeats`` calls of ``fn()``, in seconds, after ``warmup`` calls.

    The minimum, not the mean: it is the run least disturbed by everything else the
    machine does. Compare such times as ratios measured in the same run, not across
    machines. When PyTorch has started CUDA, each call is followed by
    ``torch.cuda.synchronize()``: GPU work is queued, and the clock must wait for it.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    torch = sys.modules.get("torch")
    wait = torch.cuda.synchronize if torch and torch.cuda.is_initialized() else lambda: None
    for _ in range(warmup):
        fn()
    wait()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        wait()
        times.append(time.perf_counter() - start)
    return min(times)
