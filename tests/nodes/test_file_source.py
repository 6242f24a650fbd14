"""Tests for ``file.source``: reading, timestamps, pacing, backpressure, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from nodes_support import (
    SPEECH,
    SPEECH_SAMPLES,
    Collect,
    SlowCollect,
    run_graph,
    test_registry,
)

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.graph.builder import Graph
from vbgraph.graph.load import loads
from vbgraph.io.wav import read_wav, write_wav
from vbgraph.nodes.file_source import FileSource


def read_into_collect(**params: object) -> tuple[Collect, int]:
    g = Graph("read")
    g.chain(g.add("file.source", path=str(SPEECH), **params), g.add("test.collect", id="sink"))
    result, nodes = run_graph(g)
    assert result.ok, result.errors
    sink = nodes["sink"]
    assert isinstance(sink, Collect)
    return sink, result.duration_ns


class TestReading:
    def test_emits_every_sample_of_the_file_in_order(self) -> None:
        """The concatenated frames equal the file's samples byte for byte."""
        sink, _ = read_into_collect()
        _, data = read_wav(SPEECH)
        assert sink.audio() == data
        assert sum(f.samples for f in sink.audio_frames) == SPEECH_SAMPLES

    def test_frames_hold_chunk_ms_and_the_last_one_the_rest(self) -> None:
        """With 30 ms chunks, 236 frames of 480 samples are followed by one of 320."""
        sink, _ = read_into_collect(chunk_ms=30)
        sizes = [f.samples for f in sink.audio_frames]
        assert sizes == [480] * 236 + [320]

    def test_frames_carry_the_files_format(self) -> None:
        """Every frame is 16 kHz mono int16, as the file is."""
        sink, _ = read_into_collect()
        assert {f.fmt for f in sink.audio_frames} == {AudioFormat(16000, 1, "pcm_s16le")}

    def test_pts_come_from_the_sample_count(self) -> None:
        """Frame k's pts is the time of its first sample, computed from integers."""
        sink, _ = read_into_collect(chunk_ms=30)
        start = 0
        for frame in sink.audio_frames:
            assert frame.pts == pts_ns(start, 16000)
            start += frame.samples

    def test_frames_carry_the_session_epoch(self) -> None:
        """Every frame is stamped with the epoch of the session (0 without interruptions)."""
        sink, _ = read_into_collect()
        assert {f.epoch for f in sink.audio_frames} == {0}

    def test_loop_plays_the_file_n_times_with_pts_running_on(self) -> None:
        """loop: 3 gives three copies of the file and pts that never go back."""
        sink, _ = read_into_collect(loop=3)
        _, data = read_wav(SPEECH)
        assert sink.audio() == data * 3
        pts = [f.pts for f in sink.audio_frames]
        assert pts == sorted(pts)
        assert pts[-1] == pts_ns(3 * SPEECH_SAMPLES - 320, 16000)

    def test_an_empty_wav_emits_nothing_and_ends(self, tmp_path: Path) -> None:
        """A WAV with no samples ends the stream at once, without frames."""
        empty = tmp_path / "empty.wav"
        write_wav(empty, AudioFormat(8000), b"")
        g = Graph("empty")
        g.chain(g.add("file.source", path=str(empty)), g.add("test.collect", id="sink"))
        result, nodes = run_graph(g)
        sink = nodes["sink"]
        assert isinstance(sink, Collect)
        assert result.ok and sink.frames == [] and sink.ended

    def test_relative_paths_start_at_the_graph_files_folder(self, tmp_path: Path) -> None:
        """path: speech.wav in a graph loaded from a folder reads that folder's file."""
        shutil.copy(SPEECH, tmp_path / "speech.wav")
        g = loads(
            "nodes: {a: {type: file.source, path: speech.wav}, b: {type: test.collect}}\n"
            "edges: [a -> b]\n",
            base_dir=tmp_path,
        )
        plan = g.compile(test_registry())
        params = plan.nodes["a"].params
        assert isinstance(params, FileSource.Params)
        assert params.path == str(tmp_path / "speech.wav")


class TestPacing:
    def test_without_realtime_every_frame_goes_out_at_time_zero(self) -> None:
        """As fast as downstream takes them: no session time passes."""
        sink, duration = read_into_collect()
        assert set(sink.arrivals) == {0}
        assert duration == 0

    def test_realtime_emits_each_frame_at_its_pts(self) -> None:
        """On the virtual clock, the session time at emission is the frame's pts (±1 ns)."""
        sink, duration = read_into_collect(realtime=True)
        pts = [f.pts for f in sink.audio_frames]
        assert all(abs(t - p) <= 1 for t, p in zip(sink.arrivals, pts, strict=True))
        assert duration == pts_ns(SPEECH_SAMPLES, 16000)

    def test_realtime_emits_each_frame_exactly_at_its_pts(self) -> None:
        """On the virtual clock, the session time at emission equals the frame's pts."""
        sink, _ = read_into_collect(realtime=True)
        assert sink.arrivals == [f.pts for f in sink.audio_frames]

    def test_a_slow_consumer_paces_the_source_without_loss(self) -> None:
        """A block queue of 4 into a slow consumer never holds more than 5 and drops nothing."""
        g = Graph("backpressure")
        src = g.add("file.source", path=str(SPEECH))
        slow = g.add("test.slow_collect", id="slow", delay_ms=50)
        g.connect(src, slow, capacity=4, policy="block")
        result, nodes = run_graph(g)
        assert result.ok
        (edge,) = result.edges.values()
        assert edge.peak <= edge.capacity + 1
        assert edge.lost == 0 and edge.delivered == SPEECH_SAMPLES // 320
        sink = nodes["slow"]
        assert isinstance(sink, SlowCollect)
        _, data = read_wav(SPEECH)
        assert b"".join(f.data for f in sink.frames) == data
        assert result.duration_ns == (SPEECH_SAMPLES // 320) * 50_000_000


class TestErrors:
    def test_a_missing_file_fails_compilation_naming_the_path(self, tmp_path: Path) -> None:
        """A ConfigError on field 'path' whose message names the missing file."""
        missing = tmp_path / "nope.wav"
        g = Graph("missing")
        g.chain(g.add("file.source", id="mic", path=str(missing)), g.add("test.collect"))
        with pytest.raises(ConfigError) as info:
            g.compile(test_registry())
        assert info.value.field == "path"
        assert info.value.node_id == "mic"
        assert str(missing) in str(info.value)

    def test_a_file_that_is_not_wav_fails_compilation_saying_why(self, tmp_path: Path) -> None:
        """Reading a text file as audio is a ConfigError that says it is not a WAV file."""
        bogus = tmp_path / "notes.wav"
        bogus.write_text("hello")
        g = Graph("bogus")
        g.chain(g.add("file.source", path=str(bogus)), g.add("test.collect"))
        with pytest.raises(ConfigError, match="not a WAV file") as info:
            g.compile(test_registry())
        assert info.value.field == "path"

    def test_a_chunk_shorter_than_one_sample_is_rejected(self) -> None:
        """chunk_ms: 0.01 at 16 kHz is a ConfigError on field 'chunk_ms'."""
        g = Graph("tiny")
        g.chain(g.add("file.source", path=str(SPEECH), chunk_ms=0.01), g.add("test.collect"))
        with pytest.raises(ConfigError) as info:
            g.compile(test_registry())
        assert info.value.field == "chunk_ms"

    @pytest.mark.parametrize(("field", "value"), [("chunk_ms", 0), ("loop", 0)])
    def test_non_positive_chunk_or_loop_is_rejected(self, field: str, value: int) -> None:
        """chunk_ms and loop must be positive."""
        g = Graph("bad")
        with pytest.raises(ConfigError):
            g.add("file.source", path=str(SPEECH), **{field: value})
            g.compile(test_registry())

    def test_output_format_is_read_from_the_header(self) -> None:
        """output_formats reports the file's format without reading its samples."""
        params = FileSource.Params(path=str(SPEECH))
        assert FileSource.output_formats(params, {}) == {"out": AudioFormat(16000)}
