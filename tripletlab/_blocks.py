"""How the mining losses split a large batch: the sizes both framework engines share.

Up to ``WHOLE_MATRIX_ROWS`` rows a mining loss ranks the whole ``(B, B)`` distance
matrix at once; above, it takes blocks of anchor rows of about ``BLOCK_ENTRIES``
distances each (64 MiB in float32), so that memory grows as ``B * BLOCK_ENTRIES``, not
as ``B^2``. The engines read these names at call time: tests lower both to force the
blocks, ``tools/bench.py`` and notebook 05 quote them. No framework is imported here.
"""

WHOLE_MATRIX_ROWS = 4096
BLOCK_ENTRIES = 2**24
# On a CPU the PyTorch mining engine takes blocks of at most this many distances (4 MiB
# in float32) at every size: its dozen eager passes over a block then run in the cache,
# not in memory. At B = 4096 (2 cores, AMD EPYC, 1 MiB L2 per core, 8 MiB L3) batch-all
# took 2.2 Gram products instead of 3.3, semi-hard 2.0 instead of 2.9.
CACHE_BLOCK_ENTRIES = 2**20
