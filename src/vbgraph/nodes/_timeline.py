"""Output timestamps for nodes that re-cut a stream (resampler, rechunker).

Such a node numbers its output samples from the first input frame's ``pts``
(integer sample counts: no drift). Input with gaps, e.g. a bot's replies with
silence between them, must keep its gaps in the output, so each input frame's
``pts`` is compared with where the stream would be without gaps; a jump forward
of more than ``GAP_NS`` shifts the output timeline by the same amount.

Samples the node still holds when a gap arrives (a resampler's filter delay,
a rechunker's partial frame, under 2 ms and one frame respectively) come out
after it with the shifted time: a documented error of at most that much.
"""

from __future__ import annotations

from ..formats import pts_ns

__all__ = ["GAP_NS", "Timeline"]

GAP_NS = 1_000_000
"""Jumps in input pts larger than this (1 ms) count as gaps, smaller ones as jitter."""


class Timeline:
    """Maps output sample counts to session time, following gaps in the input."""

    __slots__ = ("_in_rate", "_received", "_t0")

    def __init__(self, first_pts: int, in_rate: int) -> None:
        self._t0 = first_pts
        self._in_rate = in_rate
        self._received = 0  # input samples seen

    def observe(self, pts: int, samples: int) -> None:
        """An input frame of ``samples`` at ``pts``; a forward jump shifts the timeline."""
        expected = pts_ns(self._received, self._in_rate, self._t0)
        if pts - expected > GAP_NS:
            self._t0 += pts - expected
        self._received += samples

    def out_pts(self, out_samples: int, out_rate: int) -> int:
        """Session time of output sample number ``out_samples``."""
        return pts_ns(out_samples, out_rate, self._t0)
