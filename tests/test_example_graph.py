"""End to end: graphs/example.yaml on real recorded speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from tests.conftest import ROOT, TESTDATA

import vbgraph as vb
from vbgraph.formats import AudioFormat
from vbgraph.io.wav import read_wav

CLIPS = sorted(TESTDATA.glob("*.wav")) or [ROOT / "graphs" / "samples" / "speech_16k.wav"]


@pytest.mark.parametrize("clip", CLIPS[:3], ids=lambda p: p.stem[-4:])
def test_the_example_graph_turns_speech_into_quieter_48k_audio(clip: Path, tmp_path: Path) -> None:
    """Output is 48 kHz mono int16, three times as long, the same speech at -6 dB."""
    out = tmp_path / "out.wav"
    graph = vb.load(ROOT / "graphs" / "example.yaml", env={"INPUT": str(clip), "OUTPUT": str(out)})
    plan = graph.compile()
    assert any(n.type_name == "convert.resample" and n.inserted_for for n in plan.nodes.values())
    result = vb.run(plan, virtual_time=True)
    assert result.ok, result.errors

    in_fmt, in_data = read_wav(clip)
    assert in_fmt.rate == 16000
    out_fmt, out_data = read_wav(out)
    assert out_fmt == AudioFormat(48000, 1, "pcm_s16le")
    source = np.frombuffer(in_data, "<i2").astype(np.float64)
    produced = np.frombuffer(out_data, "<i2").astype(np.float64)
    assert abs(len(produced) - 3 * len(source)) <= 3

    # Back to 16 kHz and compare with the input scaled by -6 dB.
    back = soxr.resample(produced, 48000, 16000, quality="VHQ")
    n = min(len(back), len(source))
    expected = source[:n] * 10 ** (-6 / 20)
    error = back[:n] - expected
    snr_db = 10 * np.log10(np.sum(expected**2) / np.sum(error**2))
    assert snr_db > 30
    rms_ratio = np.sqrt(np.mean(produced**2)) / np.sqrt(np.mean(source**2))
    assert rms_ratio == pytest.approx(10 ** (-6 / 20), rel=0.02)
