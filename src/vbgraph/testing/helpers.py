"""Small helpers for tests that run graphs."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from ..clock import VirtualClock
from ..frames import AudioFrame, Frame

__all__ = ["collect_audio", "run_virtual"]

T = TypeVar("T")


def run_virtual(main: Coroutine[Any, Any, T], *, debug: bool = True) -> T:
    """Run ``main`` on a fresh :class:`VirtualClock` loop (asyncio debug mode on)."""
    return VirtualClock().run(main, debug=debug)


def collect_audio(frames: Iterable[Frame]) -> bytes:
    """Concatenate the payloads of the audio frames in ``frames``."""
    return b"".join(bytes(f.data) for f in frames if isinstance(f, AudioFrame))
