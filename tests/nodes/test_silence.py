"""Tests for ``silence``: zeros of the right format and length, one shared buffer."""

from __future__ import annotations

import pytest
from nodes_support import Collect, run_graph

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.graph.builder import Graph


def silence(**params: object) -> tuple[Collect, int]:
    g = Graph("silence")
    g.chain(g.add("silence", **params), g.add("test.collect", id="sink"))
    result, nodes = run_graph(g)
    assert result.ok, result.errors
    sink = nodes["sink"]
    assert isinstance(sink, Collect)
    return sink, result.duration_ns


@pytest.mark.parametrize("encoding", ["pcm_s16le", "pcm_f32le"])
def test_every_sample_is_zero(encoding: str) -> None:
    """int16 and float32 silence are all-zero bytes."""
    sink, _ = silence(encoding=encoding, channels=2)
    data = sink.audio()
    assert len(data) == 16000 * 2 * (2 if encoding == "pcm_s16le" else 4)
    assert not any(data)
    assert sink.audio_frames[0].fmt == AudioFormat(16000, 2, encoding)


def test_length_and_pts_are_exact() -> None:
    """1 s in 30 ms chunks at 8 kHz: 33 chunks of 240 and one of 80, pts from counts."""
    sink, _ = silence(rate=8000, chunk_ms=30)
    sizes = [f.samples for f in sink.audio_frames]
    assert sizes == [240] * 33 + [80]
    assert [f.pts for f in sink.audio_frames] == [pts_ns(240 * k, 8000) for k in range(34)]


def test_full_chunks_share_one_buffer() -> None:
    """Every full-size chunk carries the same bytes object: no allocation per chunk."""
    sink, _ = silence(duration_ms=110)
    datas = [f.data for f in sink.audio_frames]
    assert all(d is datas[0] for d in datas[:5])
    assert len(datas[5]) == 160 * 2


def test_realtime_silence_lasts_its_duration_on_the_session_clock() -> None:
    """A 500 ms real-time silence ends the session at 500 ms."""
    _, duration = silence(duration_ms=500, realtime=True)
    assert duration == 500_000_000


def test_zero_duration_emits_nothing() -> None:
    """duration_ms: 0 is an empty stream that ends at once."""
    sink, _ = silence(duration_ms=0)
    assert sink.frames == [] and sink.ended


def test_a_chunk_shorter_than_one_sample_is_rejected() -> None:
    """chunk_ms must hold at least one sample at the rate."""
    g = Graph("bad")
    g.chain(g.add("silence", rate=8000, chunk_ms=0.1), g.add("test.collect"))
    with pytest.raises(ConfigError, match="less than one sample"):
        g.compile()
