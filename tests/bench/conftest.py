"""Fixtures for the ``vbgraph bench`` tests: the modelled graph and synthetic callers."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbgraph.bench.conversation import Conversation, synthesize

ROOT = Path(__file__).resolve().parents[2]
MODELLED = ROOT / "graphs" / "modelled.yaml"
SAMPLE = ROOT / "graphs" / "samples" / "conversation.wav"

FIXED = [
    "stt.ttfb={dist: fixed, p50_ms: 180}",
    "llm.ttft={dist: fixed, p50_ms: 420}",
    "tts.ttfb={dist: fixed, p50_ms: 95}",
    'llm.replies=["Okay."]',
    # Speak a held clause at once: the tts stage is then the TTS's own latency only.
    "tts.flush_after_ms=0",
]
"""Overrides that make every modelled provider's latency a fixed, known value."""


@pytest.fixture
def caller(tmp_path: Path) -> Conversation:
    """A synthetic 4-turn caller: 1.5 s of voiced sound, then 4 s for the bot."""
    return synthesize(tmp_path / "caller.wav", 4)


@pytest.fixture
def graph() -> Path:
    """graphs/modelled.yaml."""
    return MODELLED
