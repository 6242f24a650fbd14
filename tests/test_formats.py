"""Audio formats, caps, fixation and drift-free timestamps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbgraph.errors import AudioFormatError
from vbgraph.formats import AudioCaps, AudioFormat, Encoding, pts_ns

RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]


class TestAudioFormat:
    """Sizes and validation."""

    def test_sizes_follow_from_rate_channels_and_encoding(self) -> None:
        """20 ms of 16 kHz mono int16 is 640 bytes; stereo float doubles twice."""
        assert AudioFormat(16000).bytes_for_ms(20) == 640
        assert AudioFormat(16000, 2, Encoding.PCM_F32LE).bytes_for_ms(20) == 2560
        assert AudioFormat(8000, 1, "mulaw").bytes_for_ms(20) == 160

    def test_a_partial_sample_frame_is_an_error(self) -> None:
        """samples_in refuses a length that is not whole frames, naming it."""
        with pytest.raises(AudioFormatError, match="641 bytes"):
            AudioFormat(16000).samples_in(641)

    def test_bad_fields_are_refused(self) -> None:
        """Rate, channels and encoding are checked."""
        with pytest.raises(AudioFormatError):
            AudioFormat(0)
        with pytest.raises(AudioFormatError):
            AudioFormat(16000, 0)
        with pytest.raises(AudioFormatError, match="unknown encoding"):
            AudioFormat(16000, 1, "pcm_s24")  # type: ignore[arg-type]


class TestTimestamps:
    """pts comes from integer sample counts."""

    @given(st.sampled_from(RATES))
    def test_an_hour_of_audio_ends_exactly_at_an_hour(self, rate: int) -> None:
        """No drift: sample rate*3600 is 3600 s to the nanosecond."""
        assert pts_ns(rate * 3600, rate) == 3600 * 10**9

    @given(st.sampled_from(RATES), st.integers(1, 4800))
    def test_chunked_timestamps_equal_one_shot(self, rate: int, chunk: int) -> None:
        """Stepping by chunks and computing from the count agree at every chunk."""
        total = 0
        for _ in range(100):
            total += chunk
            assert pts_ns(total, rate) == total * 10**9 // rate


class TestCaps:
    """What ports accept, and fixation to the nearest accepted format."""

    def test_none_means_any(self) -> None:
        """Empty caps accept every format."""
        assert AudioCaps().accepts(AudioFormat(44100, 2, Encoding.PCM_F32LE))

    @given(st.sampled_from(RATES), st.lists(st.sampled_from(RATES), min_size=1, max_size=4))
    def test_fixate_gives_an_accepted_rate_preferring_no_loss(
        self, rate: int, accepted: list[int]
    ) -> None:
        """Fixation keeps the rate if allowed, else the smallest higher, else the highest."""
        caps = AudioCaps(rates=accepted)
        out = caps.fixate(AudioFormat(rate))
        assert caps.accepts(out)
        higher = [r for r in accepted if r >= rate]
        assert out.rate == (min(higher) if higher else max(accepted))

    def test_intersection_is_empty_when_nothing_is_shared(self) -> None:
        """Disjoint rate sets intersect to None."""
        assert AudioCaps(rates=[8000]).intersect(AudioCaps(rates=[16000])) is None
        both = AudioCaps(rates=[8000, 16000]).intersect(AudioCaps(rates=[16000], channels=[1]))
        assert both == AudioCaps(rates=[16000], channels=[1])
