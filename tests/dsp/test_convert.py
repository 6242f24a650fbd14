"""FormatConverter: one streaming object from any of our formats to any other."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbgraph.dsp.convert import FormatConverter
from vbgraph.dsp.g711 import ulaw_encode
from vbgraph.errors import AudioFormatError
from vbgraph.formats import AudioFormat

MONO_16K = AudioFormat(16000)
ULAW_8K = AudioFormat(8000, 1, "mulaw")
STEREO_48K = AudioFormat(48000, 2)


def tone(hz: float, rate: int, seconds: float, amp: float = 8000.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def dominant_hz(data: bytes, rate: int, channels: int = 1) -> float:
    x = np.frombuffer(data, "<i2").astype(float)[::channels]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


class TestPassthrough:
    def test_equal_formats_return_the_same_object(self) -> None:
        """Nothing to do: the input comes back unchanged, not a copy (STYLE rule 9)."""
        conv = FormatConverter(MONO_16K, MONO_16K)
        data = tone(440, 16000, 0.02)
        assert conv.passthrough and conv.process(data) is data
        assert conv.flush() == b""


class TestConversions:
    def test_phone_audio_becomes_wideband_pcm_with_its_pitch_kept(self) -> None:
        """μ-law 8 kHz → int16 16 kHz: twice the samples (after the tail) and the same tone."""
        conv = FormatConverter(ULAW_8K, MONO_16K)
        out = conv.process(ulaw_encode(tone(440, 8000, 0.5))) + conv.flush()
        assert len(out) == 2 * 8000 // 2 * 2
        assert dominant_hz(out, 16000) == pytest.approx(440, abs=4)

    def test_mono_becomes_stereo_48k_with_equal_channels(self) -> None:
        """Mono 16 kHz → stereo 48 kHz: both channels carry the same signal."""
        conv = FormatConverter(MONO_16K, STEREO_48K)
        out = conv.process(tone(1000, 16000, 0.25)) + conv.flush()
        x = np.frombuffer(out, "<i2").reshape(-1, 2)
        assert len(x) == 12000
        assert np.array_equal(x[:, 0], x[:, 1])
        assert dominant_hz(out, 48000, channels=2) == pytest.approx(1000, abs=8)

    def test_stereo_48k_becomes_phone_audio(self) -> None:
        """Stereo 48 kHz → μ-law 8 kHz: one byte per 8 kHz sample."""
        conv = FormatConverter(STEREO_48K, ULAW_8K)
        stereo = np.repeat(np.frombuffer(tone(300, 48000, 0.2), "<i2"), 2).tobytes()
        out = conv.process(stereo) + conv.flush()
        assert len(out) == 1600

    def test_partial_sample_frames_are_refused(self) -> None:
        """An odd byte count of int16 audio is an error naming the format."""
        with pytest.raises(AudioFormatError, match="whole number"):
            FormatConverter(MONO_16K, ULAW_8K).process(b"\x00\x01\x02")

    def test_more_than_two_channels_is_refused(self) -> None:
        """Transports carry mono or stereo only."""
        with pytest.raises(AudioFormatError, match="more than 2 channels"):
            FormatConverter(AudioFormat(16000, 4), MONO_16K)


@given(cuts=st.lists(st.integers(min_value=0, max_value=1600), max_size=12))
def test_any_chunking_gives_the_same_stream(cuts: list[int]) -> None:
    """Streaming property: how the input is cut does not change the output."""
    src = ulaw_encode(tone(523, 8000, 0.2))
    whole = FormatConverter(ULAW_8K, MONO_16K)
    expected = bytes(whole.process(src)) + whole.flush()
    conv = FormatConverter(ULAW_8K, MONO_16K)
    out = b""
    last = 0
    for cut in [*sorted(cuts), len(src)]:
        out += bytes(conv.process(src[last:cut]))
        last = max(last, cut)
    out += conv.flush()
    assert out == expected
