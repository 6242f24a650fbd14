"""Tests for ``conversation.sink``: both sides of a call placed by their pts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nodes_support import as_array, audio, make_node, s16

from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.conversation_sink import ConversationSink
from vbgraph.runner import run

FMT = AudioFormat(16000)


def test_frames_land_at_their_pts_with_silence_between(tmp_path: Path) -> None:
    """A user frame at 0 s and a bot frame at 1 s: 1 s apart in the file, zeros between."""
    node, _ = make_node(ConversationSink, path=str(tmp_path / "c.wav"))
    node.process("user", audio(s16([1000] * 160), FMT, pts=0))
    node.process("bot", audio(s16([-2000] * 160), FMT, pts=1_000_000_000))
    node.on_end()
    fmt, data = read_wav(tmp_path / "c.wav")
    samples = as_array(data)
    assert fmt == FMT and len(samples) == 16000 + 160
    assert (samples[:160] == 1000).all() and (samples[160:16000] == 0).all()
    assert (samples[16000:] == -2000).all()


def test_overlapping_speech_is_summed_with_saturation(tmp_path: Path) -> None:
    """Caller and bot at the same time add up, clipped to int16."""
    node, _ = make_node(ConversationSink, path=str(tmp_path / "c.wav"))
    node.process("user", audio(s16([30000, 100]), FMT, pts=0))
    node.process("bot", audio(s16([30000, 200]), FMT, pts=0))
    node.on_end()
    _, data = read_wav(tmp_path / "c.wav")
    assert as_array(data).tolist() == [32767, 300]


def test_a_graph_converts_both_sides_and_keeps_the_timing(tmp_path: Path) -> None:
    """A 48 kHz bot tone paced from 0.5 s and a 16 kHz caller tone: both in one 16 kHz file."""
    g = Graph("conv")
    user = g.add("tone", id="user", rate=16000, duration_ms=300, freq_hz=300, realtime=True)
    bot = g.add("tone", id="bot", rate=48000, duration_ms=300, freq_hz=1000, realtime=True)
    conv = g.add("conversation.sink", id="conv", path=str(tmp_path / "c.wav"))
    g.connect(user, conv["user"])
    g.connect(bot, conv["bot"])
    result = run(g, virtual_time=True)
    assert result.ok
    fmt, data = read_wav(tmp_path / "c.wav")
    samples = as_array(data).astype(np.float64)
    assert fmt == FMT and abs(len(samples) - 4800) <= 2
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / 16000)
    top = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(top[0] - 300) < 10 and abs(top[1] - 1000) < 10
