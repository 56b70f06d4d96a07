"""Run a command on one CPU core: ``python tools/one_core.py COMMAND [ARGS...]``.

The command (and every kernel or worker it starts) inherits the affinity, so PyTorch,
oneDNN and TensorFlow size their thread pools for one core: the same arithmetic split
across a different number of threads. Where the OS has no affinity call (macOS), the
thread-count variables alone ask for one thread.
"""

import os
import sys

if __name__ == "__main__":
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    os.execvp(sys.argv[1], sys.argv[1:])
