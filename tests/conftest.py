"""Shared fixtures: every test runs with asyncio debug mode where it makes a loop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "graphs" / "samples"
# Real recorded speech shipped beside the project (../shared/testdata); CI has it.
TESTDATA = ROOT.parent / "shared" / "testdata" / "librivox"

os.environ.setdefault("PYTHONASYNCIODEBUG", "1")


@pytest.fixture
def speech_wav() -> Path:
    """16 kHz mono speech shipped with the repo (graphs/samples)."""
    return SAMPLES / "speech_16k.wav"
