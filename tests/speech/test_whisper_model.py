"""Tests for ``speech.whisper_model``: word timing on the session clock, model checks, the pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbgraph.errors import ConfigError
from vbgraph.frames import Word
from vbgraph.speech.whisper_model import (
    Transcription,
    WordTiming,
    _add_word,
    executor,
    resolve_model_path,
)

MS = 1_000_000


def test_words_are_placed_on_the_session_clock_clamped_and_monotone() -> None:
    """Seconds from the audio start become ns from t0; overshoot and overlap are clamped."""
    words = (
        WordTiming("a", 0.0, 0.30, 0.9),
        WordTiming("b", 0.25, 0.50, 0.8),  # overlaps "a"
        WordTiming("c", 0.90, 1.40, 0.7),  # ends after the audio
    )
    result = Transcription("a b c", words, 0.8, "en", 0.1)
    assert result.session_words(5_000 * MS, 1_000 * MS) == (
        Word("a", 5_000 * MS, 5_300 * MS, 0.9),
        Word("b", 5_300 * MS, 5_500 * MS, 0.8),
        Word("c", 5_900 * MS, 6_000 * MS, 0.7),
    )


def test_a_piece_without_a_leading_space_continues_the_previous_word() -> None:
    """Whisper's " old" + "-sposed" is one word, as in the text."""
    words: list[WordTiming] = []
    for raw, start, end, p in (
        (" He", 0.0, 0.2, 1.0),
        (" old", 0.2, 0.4, 0.6),
        ("-sposed", 0.4, 0.8, 0.4),
    ):
        _add_word(words, raw, start, end, p)
    assert words == [WordTiming("He", 0.0, 0.2, 1.0), WordTiming("old-sposed", 0.2, 0.8, 0.5)]


def test_a_model_path_must_be_a_ctranslate2_directory(tmp_path: Path) -> None:
    """No directory, or one without model.bin/config.json: ConfigError at model_path."""
    with pytest.raises(ConfigError, match="no model directory") as err:
        resolve_model_path(str(tmp_path / "absent"))
    assert err.value.field == "model_path"
    with pytest.raises(ConfigError, match=r"no model\.bin, config\.json"):
        resolve_model_path(str(tmp_path))


def test_one_small_named_pool_serves_the_whole_process() -> None:
    """executor() is the same two-thread pool every time."""
    pool = executor()
    assert pool is executor() and pool._max_workers == 2
    assert pool.submit(lambda: 1).result() == 1
