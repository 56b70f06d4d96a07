"""How the mining losses split a large batch: the sizes both framework engines share.

Up to ``WHOLE_MATRIX_ROWS`` rows a mining loss ranks the whole ``(B, B)`` distance
matrix at once; above, it takes blocks of anchor rows of about ``BLOCK_ENTRIES``
distances each (64 MiB in float32), so that memory grows as ``B * BLOCK_ENTRIES``, not
as ``B^2``. The engines read these names at call time: tests lower both to force the
blocks, ``tools/bench.py`` and notebook 05 quote them. No framework is imported here.
"""

WHOLE_MATRIX_ROWS = 4096
BLOCK_ENTRIES = 2**24
