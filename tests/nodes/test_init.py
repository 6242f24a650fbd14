"""Tests for the built-in node package: registration, module shape, docs that run."""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from nodes_support import SPEECH

import vbgraph.nodes
from vbgraph.formats import AudioFormat
from vbgraph.graph.load import loads
from vbgraph.io.wav import read_wav
from vbgraph.node import Node
from vbgraph.registry import default_registry
from vbgraph.runner import run
from vbgraph.testing import VirtualClock, simulate_call

PCM16K = AudioFormat(16000)

BUILTINS = {
    "agent.rules": "agent_rules",
    "audio.playout": "audio_playout",
    "conversation.sink": "conversation_sink",
    "convert.channels": "convert_channels",
    "convert.g711": "convert_g711",
    "convert.rechunk": "convert_rechunk",
    "convert.resample": "convert_resample",
    "convert.sample_format": "convert_sample_format",
    "fallback": "fallback",
    "file.sink": "file_sink",
    "file.source": "file_source",
    "gain": "gain",
    "llm.openai": "vbgraph.providers.openai.node",
    "llm.fake": "llm_fake",
    "log": "log",
    "log.turns": "log_turns",
    "mixer": "mixer",
    "passthrough": "passthrough",
    "recorder": "recorder",
    "s2s.openai_realtime": "vbgraph.providers.openai_realtime.node",
    "silence": "silence",
    "stt.deepgram": "vbgraph.providers.deepgram.node",
    "stt.fake": "stt_fake",
    "stt.openai": "vbgraph.providers.openai.stt_node",
    "stt.whisper": "stt_whisper",
    "tee": "tee",
    "tone": "tone",
    "transport.in": "transport_in",
    "transport.out": "transport_out",
    "tts.cartesia": "vbgraph.providers.cartesia.node",
    "tts.elevenlabs": "vbgraph.providers.elevenlabs.node",
    "tts.fake": "tts_fake",
    "tts.openai": "vbgraph.providers.openai.tts_node",
    "tts.piper": "tts_piper",
    "turn": "turn",
    "vad.native": "vad_native",
    "vad.silero": "vad_silero",
}
# Provider nodes live in their provider's package; the value is then a full module path.

NEEDS_KEY = {
    "tts.cartesia": "CARTESIA_API_KEY",
    "s2s.openai_realtime": "OPENAI_API_KEY",
    "stt.deepgram": "DEEPGRAM_API_KEY",
    "stt.openai": "OPENAI_API_KEY",
    "tts.openai": "OPENAI_API_KEY",
    "tts.elevenlabs": "ELEVENLABS_API_KEY",
}
"""Cloud providers: their examples need a key and the network, so the test runs them without
one and checks the session fails at start with an error naming the node and the variable
(their own tests run them against the fake servers in vbgraph.testing.fakes)."""


def module_of(type_name: str) -> str:
    name = BUILTINS[type_name]
    return name if "." in name else f"vbgraph.nodes.{name}"


EXAMPLE = re.compile(r"\AExample launch line::\n\n((?:    .*\n|\n)+)")


def builtin(type_name: str) -> type[Node]:
    return default_registry().get(type_name)


def example_of(cls: type[Node]) -> str:
    doc = inspect.getdoc(cls) or ""
    match = EXAMPLE.match(doc + "\n")
    assert match, f"{cls.type_name}: docstring does not open with 'Example launch line::'"
    return textwrap.dedent(match.group(1))


def test_importing_the_package_registers_every_builtin() -> None:
    """Each built-in type name resolves to the class of its own module."""
    registered = {cls.type_name for cls in vbgraph.nodes.__dict__.values() if isinstance(cls, type)}
    assert registered == set(BUILTINS)
    for type_name in BUILTINS:
        cls = builtin(type_name)
        assert cls.__module__ == module_of(type_name)


@pytest.mark.parametrize("type_name", sorted(BUILTINS))
def test_each_module_exports_exactly_its_node_class(type_name: str) -> None:
    """One node per file: the module's __all__ is that class, re-exported by the package."""
    cls = builtin(type_name)
    module = importlib.import_module(module_of(type_name))
    assert module.__all__ == [cls.__name__]
    assert cls.__name__ in vbgraph.nodes.__all__


def test_the_package_exports_each_name_once() -> None:
    """vbgraph.nodes.__all__ lists every node class once."""
    assert sorted(vbgraph.nodes.__all__) == sorted(set(vbgraph.nodes.__all__))
    assert len(vbgraph.nodes.__all__) == len(BUILTINS)


@pytest.mark.parametrize("type_name", sorted(BUILTINS))
def test_node_classes_are_final_and_subclass_node_directly(type_name: str) -> None:
    """No built-in inherits from another; shared behaviour is held, not inherited."""
    assert builtin(type_name).__bases__ == (Node,)


@pytest.mark.parametrize("type_name", sorted(BUILTINS))
def test_every_parameter_is_described(type_name: str) -> None:
    """The generated docs have a description for each parameter."""
    for name, field in builtin(type_name).Params.model_fields.items():
        assert field.description, f"{type_name}.{name} has no description"


@pytest.mark.parametrize("type_name", sorted(BUILTINS))
def test_the_example_launch_line_runs(
    type_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The YAML that opens each node's docstring compiles and runs to a clean end."""
    shutil.copy(SPEECH, tmp_path / "speech.wav")
    monkeypatch.chdir(tmp_path)
    graph = loads(example_of(builtin(type_name)), base_dir=tmp_path)
    types = {spec.type for spec in graph.to_spec().nodes.values()}
    assert type_name in types
    if type_name in NEEDS_KEY:
        monkeypatch.delenv(NEEDS_KEY[type_name], raising=False)
        result = run(graph, virtual_time=True)
        assert not result.ok
        message = " ".join(e.message for e in result.errors)
        assert NEEDS_KEY[type_name] in message and result.errors[0].phase == "start"
        return
    if "transport.in" in types:
        # A served graph needs a caller: play the speech sample as one.
        pcm = read_wav(SPEECH)[1][: 16000 * 2]
        call = VirtualClock().run(simulate_call(graph.compile(), pcm, caller_format=PCM16K))
        result = call.result
        assert call.bot_audio
    else:
        result = run(graph, virtual_time=True)
    assert result.ok, result.errors
    capsys.readouterr()
