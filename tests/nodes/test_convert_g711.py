"""Tests for ``convert.g711``: telephony audio in and out of a PCM graph."""

from __future__ import annotations

import numpy as np
import pytest
from nodes_support import SPEECH, Collect, as_array, audio, make_node, run_graph, s16

from vbgraph.dsp.g711 import alaw_encode, ulaw_decode, ulaw_encode
from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.convert_g711 import ConvertG711


def test_int16_is_encoded_to_mulaw_and_back() -> None:
    """Encode then decode a frame: the kernels' bytes, rate/channels/pts kept."""
    pcm = s16([0, 1000, -1000, 32767, -32768])
    enc, out = make_node(ConvertG711, encoding="mulaw")
    enc.process("in", audio(pcm, AudioFormat(8000), pts=40))
    ((_, ulaw),) = out
    assert isinstance(ulaw, AudioFrame)
    assert ulaw.data == ulaw_encode(pcm) and ulaw.fmt == AudioFormat(8000, 1, "mulaw")
    dec, out = make_node(ConvertG711, encoding="pcm_s16le")
    dec.process("in", ulaw)
    ((_, back),) = out
    assert isinstance(back, AudioFrame)
    assert back.data == ulaw_decode(ulaw.data) and back.pts == 40


def test_a_frame_already_in_the_target_encoding_passes_as_is() -> None:
    """Nothing to do: the same frame object goes on."""
    node, out = make_node(ConvertG711, encoding="alaw")
    frame = audio(alaw_encode(s16([1, 2])), AudioFormat(8000, 1, "alaw"))
    node.process("in", frame)
    assert out[0][1] is frame


def test_negotiation_brings_speech_to_a_mulaw_8k_consumer(tmp_path: object) -> None:
    """16 kHz int16 speech into a mulaw 8 kHz sink: resample, then encode."""
    g = Graph("phone")
    src = g.add("file.source", path=str(SPEECH))
    sink = g.add("file.sink", path=f"{tmp_path}/phone.wav", rate=8000, encoding="mulaw")
    g.chain(src, sink)
    plan = g.compile()
    inserted = [n.type_name for n in plan.nodes.values() if n.inserted_for]
    assert inserted == ["convert.resample", "convert.g711"]
    result, _ = run_graph(g)
    assert result.ok
    fmt, data = read_wav(f"{tmp_path}/phone.wav")
    assert fmt == AudioFormat(8000, 1, "mulaw")
    _, speech = read_wav(SPEECH)
    assert abs(len(data) - len(speech) // 4) <= 1  # half the samples, one byte each
    decoded = as_array(ulaw_decode(data)).astype(np.float64)
    assert np.sqrt(np.mean(decoded**2)) > 500  # real speech, not silence


def test_mulaw_input_is_decoded_for_pcm_nodes() -> None:
    """A mulaw source into a gain (int16 only) gets a decoder in front."""
    g = Graph("in")
    src = g.add("tone", rate=8000, duration_ms=100)
    enc = g.add("convert.g711", encoding="mulaw")
    gain = g.add("gain", db=0)
    sink = g.add("test.collect", id="sink")
    g.chain(src, enc, gain, sink)
    result, nodes = run_graph(g)
    assert result.ok
    collect = nodes["sink"]
    assert isinstance(collect, Collect)
    assert {f.fmt for f in collect.audio_frames} == {AudioFormat(8000)}


def test_g711_to_the_other_g711_is_refused() -> None:
    """mulaw -> alaw directly is not this node's job: a clear error at compile time."""
    g = Graph("x")
    src = g.add("tone", rate=8000, duration_ms=40)
    a = g.add("convert.g711", encoding="mulaw")
    b = g.add("convert.g711", encoding="alaw")
    g.chain(src, a, b)
    with pytest.raises(ConfigError, match="not mulaw to alaw"):
        g.compile()
