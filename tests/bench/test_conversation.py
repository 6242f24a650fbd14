"""Loading scripted conversations (vbgraph.bench.conversation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vbgraph.bench.conversation import (
    ScriptedTurn,
    load_conversation,
    load_conversations,
    synthesize,
)
from vbgraph.errors import ConfigError
from vbgraph.io.wav import read_wav

from .conftest import SAMPLE


def _wav(path: Path, seconds: float = 2.0) -> Path:
    synthesize(path, 1, speech_s=0.5, lead_s=0.5, tail_s=seconds - 1.0)
    path.with_suffix(".txt").unlink()
    return path


class TestScripts:
    def test_the_bundled_sample_has_four_turns_with_ends(self) -> None:
        """graphs/samples/conversation.txt: START, END and words per line."""
        conv = load_conversation(SAMPLE)
        assert conv.name == "conversation" and conv.script == SAMPLE.with_suffix(".txt")
        assert len(conv.turns) == 4
        assert conv.turns[0] == ScriptedTurn(5.0, 6.5, "What time do you open tomorrow?")
        assert 27 < conv.duration_s < 28

    def test_a_txt_line_may_omit_the_end_and_comments_are_skipped(self, tmp_path: Path) -> None:
        """START<TAB>WORDS works; '#' lines and blank lines do not count."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".txt").write_text("# caller\n\n0.5\tHello there\n", encoding="utf-8")
        assert load_conversation(wav).turns == (ScriptedTurn(0.5, None, "Hello there"),)

    def test_a_json_script_wins_over_a_txt_one(self, tmp_path: Path) -> None:
        """NAME.json is read when both exist."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".txt").write_text("0.1\t0.2\tfrom txt\n", encoding="utf-8")
        turns = {"turns": [{"start_s": 0.5, "end_s": 1.0, "text": "from json"}]}
        wav.with_suffix(".json").write_text(json.dumps(turns), encoding="utf-8")
        conv = load_conversation(wav)
        assert conv.texts == ["from json"] and conv.turns[0].end_s == 1.0

    def test_a_script_path_finds_its_wav(self, tmp_path: Path) -> None:
        """--conversation may name the .txt: the WAV has the same stem."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".txt").write_text("0.5\tHi\n", encoding="utf-8")
        assert load_conversation(wav.with_suffix(".txt")).wav == wav

    def test_a_bad_txt_line_names_file_and_line(self, tmp_path: Path) -> None:
        """A line that is not START<TAB>...: ConfigError at file:line."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".txt").write_text("0.5\tok\nsoon\tnot a time\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"c\.txt:2:1: bad script line"):
            load_conversation(wav)

    def test_invalid_json_names_where(self, tmp_path: Path) -> None:
        """Broken JSON: ConfigError with the line and column."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".json").write_text('{"turns": [\n  {"start_s": }]}', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"c\.json:2:\d+: the script is not valid JSON"):
            load_conversation(wav)

    def test_a_json_turn_without_text_is_refused(self, tmp_path: Path) -> None:
        """Each JSON turn needs start_s and text."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".json").write_text('[{"start_s": 1}]', encoding="utf-8")
        with pytest.raises(ConfigError, match="turn 0 needs 'start_s' and 'text'"):
            load_conversation(wav)

    @pytest.mark.parametrize(
        ("script", "match"),
        [
            ("1.0\t0.5\tends before it starts\n", "must not be before its start"),
            ("-1\tnegative\n", ">= 0"),
            ("1.0\tlater\n0.5\tearlier\n", "time order"),
            ("9.0\tafter the end\n", "after the end"),
        ],
    )
    def test_impossible_times_are_refused(self, tmp_path: Path, script: str, match: str) -> None:
        """Ends before starts, negative times, disorder and turns past the audio."""
        wav = _wav(tmp_path / "c.wav")
        wav.with_suffix(".txt").write_text(script, encoding="utf-8")
        with pytest.raises(ConfigError, match=match):
            load_conversation(wav)


class TestFiles:
    def test_a_missing_file_is_a_config_error_naming_it(self, tmp_path: Path) -> None:
        """No WAV: the option and path are named."""
        with pytest.raises(ConfigError, match="no such WAV file"):
            load_conversations(tmp_path / "nope.wav")

    def test_a_file_that_is_not_a_wav_is_a_config_error(self, tmp_path: Path) -> None:
        """Unreadable audio fails before any session starts."""
        bad = tmp_path / "bad.wav"
        bad.write_bytes(b"not a wav at all")
        with pytest.raises(ConfigError, match="cannot read the WAV"):
            load_conversation(bad)

    def test_a_folder_gives_every_wav_sorted_by_name(self, tmp_path: Path) -> None:
        """DIR: each *.wav is one conversation."""
        synthesize(tmp_path / "b.wav", 1)
        synthesize(tmp_path / "a.wav", 2)
        assert [c.name for c in load_conversations(tmp_path)] == ["a", "b"]

    def test_an_empty_folder_is_a_config_error(self, tmp_path: Path) -> None:
        """Nothing to play is said at once."""
        with pytest.raises(ConfigError, match=r"no \.wav file"):
            load_conversations(tmp_path)


class TestSynthesize:
    def test_turn_times_come_from_sample_counts(self, tmp_path: Path) -> None:
        """Script times match the audio exactly: lead, speech, gaps, tail."""
        conv = synthesize(tmp_path / "s.wav", 3, speech_s=[1.0, 2.0], gap_s=3.0, lead_s=0.5)
        assert [(t.start_s, t.end_s) for t in conv.turns] == [
            (0.5, 1.5),
            (4.5, 6.5),
            (9.5, 10.5),
        ]
        assert conv.duration_s == pytest.approx(10.5 + 3.0)

    def test_the_audio_is_loud_only_inside_the_turns(self, tmp_path: Path) -> None:
        """Silence between turns, sound within them (what a VAD needs)."""
        import numpy as np

        conv = synthesize(tmp_path / "s.wav", 1, speech_s=1.0, lead_s=1.0, tail_s=1.0)
        fmt, data = read_wav(conv.wav)
        samples = np.frombuffer(data, dtype="<i2")
        rate = fmt.rate
        assert not samples[: rate - 1].any() and not samples[2 * rate + 1 :].any()
        assert np.abs(samples[rate : 2 * rate]).max() > 3000

    def test_no_turns_is_refused(self, tmp_path: Path) -> None:
        """A conversation needs a turn."""
        with pytest.raises(ConfigError):
            synthesize(tmp_path / "s.wav", 0)
