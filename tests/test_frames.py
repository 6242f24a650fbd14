"""Frames are small immutable values."""

from __future__ import annotations

import dataclasses

import pytest

from vbgraph.formats import AudioFormat
from vbgraph.frames import FRAME_KINDS, AudioFrame, EndFrame, TextFrame, TranscriptFrame


class TestFrames:
    """Immutability, slots, helpers."""

    def test_frames_cannot_be_changed(self) -> None:
        """Assigning a field raises."""
        f = TextFrame("hi", pts=1, epoch=2)
        with pytest.raises(dataclasses.FrozenInstanceError):
            f.text = "no"  # type: ignore[misc]

    def test_frames_have_no_instance_dict(self) -> None:
        """Slotted: no per-frame dict allocation."""
        assert not hasattr(AudioFrame(b"", AudioFormat(16000)), "__dict__")

    def test_with_data_keeps_time_and_epoch(self) -> None:
        """with_data replaces the payload (and format) only."""
        f = AudioFrame(b"\0\0" * 160, AudioFormat(8000), pts=5, epoch=3)
        g = f.with_data(b"\0\0" * 320, AudioFormat(16000))
        assert (g.pts, g.epoch, g.samples, g.duration_ns) == (5, 3, 320, 20_000_000)

    def test_the_audio_buffer_is_held_not_copied(self) -> None:
        """A memoryview payload stays the same object."""
        buf = memoryview(bytes(640))
        assert AudioFrame(buf, AudioFormat(16000)).data is buf

    def test_kinds_name_every_frame_class(self) -> None:
        """FRAME_KINDS maps kind names to classes."""
        assert FRAME_KINDS["audio"] is AudioFrame
        assert FRAME_KINDS["transcript"] is TranscriptFrame
        assert FRAME_KINDS["end"] is EndFrame
