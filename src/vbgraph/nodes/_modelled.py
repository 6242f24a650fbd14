"""Latency models for the modelled providers (``stt.fake``, ``llm.fake``, ``tts.fake``).

A user asks "what if my LLM's time to first token is 400 ms at p95?" by
writing ``ttfb: {p50_ms: 180, p95_ms: 400}``. The delay of each request is
drawn from a lognormal distribution with that median and 95th percentile
(``dist: fixed`` uses ``p50_ms`` always; ``uniform`` spreads evenly between
``p50_ms`` and ``p95_ms``). Draws come from a generator seeded by the node's
``seed`` and the session id, so a run is reproducible and two sessions differ.
"""

from __future__ import annotations

import math
import random
import zlib
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Faults", "Latency", "LatencySampler", "ModelledFault"]

_Z95 = 1.6448536269514722  # the standard normal's 95th percentile


class Latency(BaseModel):
    """A delay distribution, in milliseconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: Literal["lognormal", "fixed", "uniform"] = Field(
        "lognormal", description="Shape: lognormal (from p50 and p95), fixed, or uniform."
    )
    p50_ms: float = Field(200.0, ge=0, le=60_000, description="Median delay, ms.")
    p95_ms: float | None = Field(
        None, ge=0, le=120_000, description="95th percentile, ms (default: 2 x p50)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.p95_ms is not None and self.p95_ms < self.p50_ms:
            raise ValueError("p95_ms must not be below p50_ms")
        return self

    @property
    def p95(self) -> float:
        """The 95th percentile in ms (``p95_ms`` or twice the median)."""
        return self.p95_ms if self.p95_ms is not None else 2 * self.p50_ms


class LatencySampler:
    """Draws delays (seconds) from a :class:`Latency`; reproducible per seed and session."""

    __slots__ = ("_rng", "model")

    def __init__(self, model: Latency, seed: int, session_id: str) -> None:
        self.model = model
        self._rng = random.Random(seed * 1_000_003 + zlib.crc32(session_id.encode()))

    def draw_s(self) -> float:
        """One delay, in seconds."""
        m = self.model
        if m.dist == "fixed" or m.p50_ms == 0:
            return m.p50_ms / 1000
        if m.dist == "uniform":
            return self._rng.uniform(m.p50_ms, m.p95) / 1000
        sigma = (math.log(m.p95) - math.log(m.p50_ms)) / _Z95
        return math.exp(self._rng.gauss(math.log(m.p50_ms), sigma)) / 1000


class ModelledFault(RuntimeError):
    """A failure a modelled provider was told to have (``faults``)."""


class Faults(BaseModel):
    """Failures to inject, for testing fallbacks and error handling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: bool = Field(False, description="Fail at start (like a refused connection).")
    error_turns: list[int] = Field(
        default_factory=list, description="Requests (0-based, per session) that raise an error."
    )
    stall_turns: list[int] = Field(
        default_factory=list, description="Requests that never get an answer (a hung provider)."
    )

    def check_start(self, node_id: str) -> None:
        """Raise if told to fail at start."""
        if self.start:
            raise ModelledFault(f"{node_id}: modelled connection failure")

    def check_request(self, node_id: str, index: int) -> bool:
        """Raise for request ``index`` if told to; False if it must go unanswered."""
        if index in self.error_turns:
            raise ModelledFault(f"{node_id}: modelled error on request {index}")
        return index not in self.stall_turns
