"""Tests for ``convert.rechunk``: any chunking in, exact N-ms frames out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nodes_support import SPEECH, Collect, audio, make_node, run_graph

from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.frames import AudioFrame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.convert_rechunk import ConvertRechunk

FMT = AudioFormat(16000)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2000), max_size=30))
def test_any_chunking_gives_exact_frames_with_exact_pts(sizes: list[int]) -> None:
    """Whatever the input sizes, outputs are 20 ms each, in order, with pts from counts."""
    node, out = make_node(ConvertRechunk, chunk_ms=20)
    stream = bytes(range(256)) * (sum(sizes) * 2 // 256 + 1)
    pos = 0
    for n in sizes:
        node.process("in", audio(stream[pos : pos + 2 * n], FMT, pts=pts_ns(pos // 2, 16000)))
        pos += 2 * n
    frames = [f for _, f in out if isinstance(f, AudioFrame)]
    assert all(len(f.data) == 640 for f in frames)
    assert b"".join(bytes(f.data) for f in frames) == stream[: len(frames) * 640]
    assert [f.pts for f in frames] == [k * 20_000_000 for k in range(len(frames))]
    assert len(frames) == pos // 640


def test_the_last_partial_frame_is_emitted_or_padded() -> None:
    """on_end emits the remainder as is, or padded with silence with pad_last."""
    for pad, size in ((False, 100), (True, 640)):
        node, out = make_node(ConvertRechunk, chunk_ms=20, pad_last=pad)
        node.process("in", audio(b"\x01\x00" * 370, FMT))
        node.on_end()
        last = out[-1][1]
        assert isinstance(last, AudioFrame) and len(last.data) == size
        if pad:
            assert bytes(last.data)[100:] == bytes(540)


def test_mulaw_padding_is_mulaw_silence() -> None:
    """Padding G.711 uses its silence code, not zero bytes."""
    node, out = make_node(ConvertRechunk, chunk_ms=20, pad_last=True)
    node.process("in", audio(b"\x80" * 10, AudioFormat(8000, 1, "mulaw")))
    node.on_end()
    assert bytes(out[-1][1].data)[10:] == b"\xff" * 150  # type: ignore[union-attr]


def test_an_interrupt_drops_the_partial_frame() -> None:
    """After on_interrupt, held bytes are gone and pts restart at the next input."""
    node, out = make_node(ConvertRechunk, chunk_ms=20)
    node.process("in", audio(b"\x00\x00" * 300, FMT, pts=0))
    node.on_interrupt(1)
    node.process("in", audio(b"\x00\x00" * 320, FMT, pts=5_000_000_000))
    (frame,) = [f for _, f in out if isinstance(f, AudioFrame)]
    assert frame.pts == 5_000_000_000


def test_speech_read_in_odd_blocks_comes_out_in_20ms_frames() -> None:
    """file.source at 37 ms -> rechunk 20 ms: every frame 640 bytes, audio unchanged."""
    g = Graph("r")
    src = g.add("file.source", path=str(SPEECH), chunk_ms=37)
    rechunk = g.add("convert.rechunk", chunk_ms=20)
    sink = g.add("test.collect", id="sink")
    g.chain(src, rechunk, sink)
    result, nodes = run_graph(g)
    assert result.ok
    collect = nodes["sink"]
    assert isinstance(collect, Collect)
    frames = collect.audio_frames
    assert all(len(f.data) == 640 for f in frames[:-1])
    _, speech = read_wav(SPEECH)
    assert b"".join(bytes(f.data) for f in frames) == speech


def test_a_gap_in_the_input_is_kept_in_the_output() -> None:
    """Frames after a 500 ms jump in pts carry the jumped time."""
    node, out = make_node(ConvertRechunk, chunk_ms=20)
    node.process("in", audio(b"\x00\x00" * 640, FMT, pts=0))
    node.process("in", audio(b"\x00\x00" * 640, FMT, pts=540_000_000))
    frames = [f for _, f in out if isinstance(f, AudioFrame)]
    assert [f.pts for f in frames] == [0, 20_000_000, 540_000_000, 560_000_000]
