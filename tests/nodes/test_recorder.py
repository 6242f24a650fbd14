"""Tests for ``recorder``: a tap that passes frames on and records audio."""

from __future__ import annotations

from pathlib import Path

import pytest
from nodes_support import SPEECH, Collect, audio, make_node, run_graph, s16

from vbgraph.errors import AudioFormatError, UsageError
from vbgraph.formats import AudioFormat
from vbgraph.frames import TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.recorder import Recorder


def tap(**params: object) -> tuple[Recorder, Collect]:
    g = Graph("tap")
    g.chain(
        g.add("file.source", path=str(SPEECH)),
        g.add("recorder", id="rec", **params),
        g.add("test.collect", id="after"),
    )
    result, nodes = run_graph(g)
    assert result.ok, result.errors
    rec, after = nodes["rec"], nodes["after"]
    assert isinstance(rec, Recorder) and isinstance(after, Collect)
    return rec, after


def test_frames_pass_through_unchanged_and_are_counted() -> None:
    """Downstream sees every frame; frames and samples count what went by."""
    rec, after = tap()
    assert len(after.frames) == rec.frames == 355
    assert rec.samples == 113_600
    assert rec.format == AudioFormat(16000)


def test_keep_holds_the_audio_in_memory() -> None:
    """With keep: true, audio() is exactly the file's samples, and they are the same frames."""
    rec, after = tap(keep=True)
    assert rec.audio() == read_wav(SPEECH)[1]
    assert rec.kept is not None
    assert all(a is b for a, b in zip(rec.kept, after.frames, strict=True))


def test_path_writes_what_went_by_to_a_wav(tmp_path: Path) -> None:
    """With path, the audio is also written to a WAV file identical to the input."""
    out = tmp_path / "tap.wav"
    tap(path=str(out))
    assert read_wav(out) == read_wav(SPEECH)


def test_audio_without_keep_is_a_usage_error() -> None:
    """audio() says it needs keep: true instead of returning nothing."""
    rec, _ = tap()
    with pytest.raises(UsageError, match="keep"):
        rec.audio()


def test_non_audio_frames_are_counted_and_passed_but_not_recorded() -> None:
    """A text frame goes on and counts as a frame, not as samples."""
    node, out = make_node(Recorder, keep=True)
    assert isinstance(node, Recorder)
    text = TextFrame("hello")
    node.process("in", text)
    assert out == [("out", text)]
    assert (node.frames, node.samples, node.audio()) == (1, 0, b"")


def test_a_format_change_is_an_error_after_passing_the_frame_on() -> None:
    """The tap never blocks the flow; a second format is refused for the recording."""
    node, out = make_node(Recorder, keep=True)
    node.process("in", audio(s16([1]), AudioFormat(8000)))
    other = audio(s16([2]), AudioFormat(16000))
    with pytest.raises(AudioFormatError):
        node.process("in", other)
    assert out[-1] == ("out", other)
