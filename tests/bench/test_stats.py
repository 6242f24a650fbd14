"""Percentiles and summaries (vbgraph.bench.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbgraph.bench.stats import TurnRecord, percentile, summarize, summarize_stages


class TestPercentile:
    def test_the_median_of_an_even_count_interpolates_between_the_middle_two(self) -> None:
        """p50 of 1, 2, 3, 4 is 2.5."""
        assert percentile([4, 1, 3, 2], 50) == 2.5

    def test_known_percentiles_of_one_to_one_hundred_and_one(self) -> None:
        """On 0..100 the q-th percentile is q itself."""
        values = [float(v) for v in range(101)]
        assert [percentile(values, q) for q in (0, 50, 90, 95, 99, 100)] == [
            0,
            50,
            90,
            95,
            99,
            100,
        ]

    def test_p99_of_ten_values_lies_between_the_two_largest(self) -> None:
        """Linear interpolation: rank 8.91 of 10 sorted values."""
        values = [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 1000]
        assert percentile(values, 99) == pytest.approx(90 + 0.91 * 910)

    def test_one_value_is_every_percentile(self) -> None:
        """A single sample is its own p50 and p99."""
        assert percentile([7.5], 50) == percentile([7.5], 99) == 7.5

    def test_no_values_give_nan(self) -> None:
        """An empty list has no percentile."""
        assert math.isnan(percentile([], 95))

    def test_a_percentile_outside_0_to_100_is_refused(self) -> None:
        """q must be 0-100."""
        with pytest.raises(ValueError, match="outside 0-100"):
            percentile([1.0], 101)

    @given(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
        st.sampled_from([0, 1, 50, 90, 95, 99, 100]),
    )
    def test_it_agrees_with_numpy_linear_percentiles(self, values: list[float], q: int) -> None:
        """Same definition as numpy.percentile's default (linear)."""
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-6)


class TestSummary:
    def test_none_values_are_left_out(self) -> None:
        """A stage that was not seen does not count."""
        s = summarize([100.0, None, 300.0])
        assert (s.n, s.p50, s.mean, s.min, s.max) == (2, 200.0, 200.0, 100.0, 300.0)

    def test_an_empty_summary_serializes_nan_as_null(self) -> None:
        """JSON has no NaN: empty figures become null."""
        data = summarize([]).to_dict()
        assert data["n"] == 0
        assert data["p95"] is None and data["mean"] is None

    def test_stage_summaries_cover_every_stage_and_total(self) -> None:
        """summarize_stages has one entry per stage and total, in path order."""
        turn = TurnRecord("s", "c", 1, {}, {"vad": 300.0, "perceived": 1000.0})
        out = summarize_stages([turn])
        assert list(out) == [
            "vad",
            "stt",
            "turn",
            "llm",
            "tts",
            "playout",
            "voice_to_voice",
            "perceived",
        ]
        assert out["vad"].p50 == 300.0 and out["stt"].n == 0
