"""Queue overflow policies and the default capacity (shared by spec and runtime)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BLOCK", "DEFAULT_CAPACITY", "DROP_NEWEST", "DROP_OLDEST", "QueuePolicy"]

DEFAULT_CAPACITY = 16
"""Frames per queue. A queue in steady state is empty; capacity only bounds the
latency a stalled consumer adds before the policy acts: 16 x 20 ms = 320 ms."""


class QueuePolicy(StrEnum):
    """What a full queue does with one more frame (see ``runtime/edge.py``)."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


BLOCK = QueuePolicy.BLOCK
DROP_OLDEST = QueuePolicy.DROP_OLDEST
DROP_NEWEST = QueuePolicy.DROP_NEWEST
