"""Tests for ``file.sink``: byte-exact writing in every WAV encoding, lazy open, closing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from nodes_support import SPEECH, audio, make_node, run_graph, s16

from vbgraph.errors import AudioFormatError
from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav, write_wav
from vbgraph.nodes.file_sink import FileSink


def copy(src: Path, dst: Path) -> FileSink:
    g = Graph("copy")
    g.chain(g.add("file.source", path=str(src)), g.add("file.sink", id="sink", path=str(dst)))
    result, nodes = run_graph(g)
    assert result.ok, result.errors
    sink = nodes["sink"]
    assert isinstance(sink, FileSink)
    return sink


class TestWriting:
    def test_copying_a_wav_through_the_graph_keeps_every_byte(self, tmp_path: Path) -> None:
        """file.source -> file.sink reproduces the speech file's format and samples."""
        out = tmp_path / "copy.wav"
        sink = copy(SPEECH, out)
        assert read_wav(out) == read_wav(SPEECH)
        assert sink.frames_written == 113_600 // 320
        assert sink.samples_written == 113_600

    @pytest.mark.parametrize(
        "fmt",
        [
            AudioFormat(48000, 2, "pcm_f32le"),
            AudioFormat(8000, 1, "mulaw"),
            AudioFormat(8000, 1, "alaw"),
            AudioFormat(22050, 3, "pcm_s16le"),
        ],
        ids=str,
    )
    def test_every_wav_encoding_is_written_as_it_arrives(
        self, tmp_path: Path, fmt: AudioFormat
    ) -> None:
        """Float, mu-law, A-law and multichannel int16 pass without any converter."""
        rng = np.random.default_rng(7)
        data = rng.integers(0, 256, fmt.frame_bytes * 1234, dtype=np.uint8).tobytes()
        if fmt.encoding == "pcm_f32le":  # keep floats finite and in range
            data = rng.uniform(-1, 1, fmt.channels * 1234).astype("<f4").tobytes()
        src, out = tmp_path / "in.wav", tmp_path / "out.wav"
        write_wav(src, fmt, data)
        copy(src, out)
        assert read_wav(out) == (fmt, data)

    def test_parent_folders_are_created(self, tmp_path: Path) -> None:
        """A path in folders that do not exist yet is written."""
        out = tmp_path / "a" / "b" / "tone.wav"
        g = Graph("deep")
        g.chain(g.add("tone", duration_ms=100), g.add("file.sink", path=str(out)))
        result, _ = run_graph(g)
        assert result.ok
        fmt, data = read_wav(out)
        assert fmt == AudioFormat(16000) and len(data) == 1600 * 2


class TestPinnedFormat:
    def test_rate_makes_negotiation_resample_into_the_file(self, tmp_path: Path) -> None:
        """rate: 48000 on the sink gets a resampler inserted and a 48 kHz file of 3x the samples."""
        out = tmp_path / "48k.wav"
        g = Graph("pinned")
        g.chain(
            g.add("file.source", path=str(SPEECH)), g.add("file.sink", path=str(out), rate=48000)
        )
        result, nodes = run_graph(g)
        assert result.ok, result.errors
        assert "source~sink.resample" in nodes
        fmt, data = read_wav(out)
        assert fmt == AudioFormat(48000) and len(data) == 2 * 3 * 113_600

    def test_channels_and_encoding_pin_the_rest_of_the_format(self, tmp_path: Path) -> None:
        """channels: 2 and encoding: pcm_f32le give a stereo float file of the same length."""
        out = tmp_path / "stereo.wav"
        g = Graph("pinned")
        g.chain(
            g.add("tone", duration_ms=100),
            g.add("file.sink", path=str(out), channels=2, encoding="pcm_f32le"),
        )
        result, _ = run_graph(g)
        assert result.ok, result.errors
        fmt, data = read_wav(out)
        assert fmt == AudioFormat(16000, 2, "pcm_f32le") and len(data) == 1600 * 2 * 4

    def test_without_pins_the_input_takes_every_wav_format(self) -> None:
        """The default input accepts pcm_s16le, pcm_f32le, mulaw and alaw at any rate."""
        inputs, _ = FileSink.ports(FileSink.Params(path="x.wav"))
        caps = inputs["in"].caps
        assert caps is not None
        assert caps.encodings == {"pcm_s16le", "pcm_f32le", "mulaw", "alaw"}
        assert caps.rates is None and caps.channels is None


class TestLifecycle:
    def test_no_file_is_created_before_the_first_frame(self, tmp_path: Path) -> None:
        """The writer opens lazily, with the first frame's format."""
        out = tmp_path / "lazy.wav"
        sink, _ = make_node(FileSink, path=str(out))
        assert not out.exists()
        assert isinstance(sink, FileSink)
        sink.process("in", audio(s16([1, 2, 3]), AudioFormat(8000)))
        assert out.exists()
        sink.on_end()
        assert read_wav(out) == (AudioFormat(8000), s16([1, 2, 3]))

    def test_an_input_without_frames_writes_no_file_and_says_so(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With zero frames the format is unknown: no file, one warning naming the path."""
        out = tmp_path / "never.wav"
        g = Graph("empty")
        g.chain(g.add("silence", duration_ms=0), g.add("file.sink", path=str(out)))
        with caplog.at_level(logging.WARNING, logger="vbgraph.nodes.file_sink"):
            result, _ = run_graph(g)
        assert result.ok
        assert not out.exists()
        assert [r.getMessage() for r in caplog.records] == [
            f"file.sink 'sink': no audio arrived, so {out} was not written"
        ]

    def test_closing_twice_is_harmless(self, tmp_path: Path) -> None:
        """on_end then stop (the runtime calls both) leaves one valid file."""
        out = tmp_path / "twice.wav"
        sink, _ = make_node(FileSink, path=str(out))
        assert isinstance(sink, FileSink)
        sink.process("in", audio(s16([5, 6]), AudioFormat(8000)))
        sink.on_end()
        sink.stop()
        sink.stop()
        assert read_wav(out) == (AudioFormat(8000), s16([5, 6]))

    def test_a_frame_in_another_format_is_an_error(self, tmp_path: Path) -> None:
        """Negotiation fixes the format; a frame that breaks it is not written."""
        out = tmp_path / "mixed.wav"
        sink, _ = make_node(FileSink, path=str(out))
        sink.process("in", audio(s16([1]), AudioFormat(8000)))
        with pytest.raises(AudioFormatError, match="16000"):
            sink.process("in", audio(s16([1]), AudioFormat(16000)))
        sink.stop()
        assert read_wav(out) == (AudioFormat(8000), s16([1]))
