"""Bounds of the integers users type (limits, offsets, ids).

SQLite stores 64-bit signed integers: a larger offset or id raises OverflowError deep in the driver,
so every frontend bounds them here and turns a bigger number into a usage error instead of a crash.
"""

from __future__ import annotations

MAX_SQL_INT = 2**63 - 1
