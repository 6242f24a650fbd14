"""The node base class: ports, class checks, params, path resolution."""

from __future__ import annotations

import os

import pytest

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame, TextFrame
from vbgraph.node import GraphPath, Node, NodeParams, audio_port, check_node_class, text_port


class TestPorts:
    """What ports declare."""

    def test_an_audio_port_carries_audio_and_a_text_port_does_not(self) -> None:
        """carries_audio follows the frame kinds, including the generic Frame."""
        assert audio_port().carries_audio
        assert not text_port().carries_audio
        from vbgraph.node import frame_port

        assert frame_port(Frame).carries_audio
        assert not frame_port(TextFrame).carries_audio

    def test_output_formats_follow_same_as_and_fixed(self) -> None:
        """The default negotiation repeats the named input or the fixed format."""

        class Shape(Node):
            type_name = "t.shape"
            inputs = {"in": audio_port()}
            outputs = {
                "copy": audio_port(same_as="in"),
                "fixed": audio_port(fixed=AudioFormat(8000)),
            }

        fmt = AudioFormat(44100, 2)
        assert Shape.output_formats(NodeParams(), {"in": fmt}) == {
            "copy": fmt,
            "fixed": AudioFormat(8000),
        }


class TestClassChecks:
    """Malformed node classes are refused when registered."""

    def test_a_node_without_a_type_name_is_refused(self) -> None:
        """type_name is required."""

        class Nameless(Node):
            pass

        with pytest.raises(ConfigError, match="no type_name"):
            check_node_class(Nameless)

    def test_a_sync_run_is_refused(self) -> None:
        """run must be async."""

        class BadRun(Node):
            type_name = "t.badrun"

            def run(self) -> None:  # type: ignore[override]
                return None

        with pytest.raises(ConfigError, match="run must be 'async def'"):
            check_node_class(BadRun)

    def test_sync_and_async_process_are_told_apart(self) -> None:
        """is_async reflects how process is written."""

        class A(Node):
            type_name = "t.a"

            async def process(self, port: str, frame: Frame) -> None:
                return None

        assert A.is_async() and not Node.is_async()
        assert AudioFrame  # imported for the type of frames nodes see


class TestGraphPath:
    """File params resolve relative to the graph file."""

    def test_a_relative_path_joins_the_base_dir(self) -> None:
        """base_dir in the validation context prefixes relative paths only."""

        class P(NodeParams):
            path: GraphPath

        rel = P.model_validate({"path": "a/b.wav"}, context={"base_dir": "/g"})
        absolute = P.model_validate({"path": "/x.wav"}, context={"base_dir": "/g"})
        assert rel.path == os.path.normpath("/g/a/b.wav") and absolute.path == "/x.wav"
        assert P.model_validate({"path": "a.wav"}).path == "a.wav"
