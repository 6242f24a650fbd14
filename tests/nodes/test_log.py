"""Tests for ``log``: line format per frame kind, every N-th, logger output, laziness."""

from __future__ import annotations

import logging

import pytest
from nodes_support import Collect, audio, make_node, run_graph, s16

from vbgraph.formats import AudioFormat
from vbgraph.frames import EndFrame, Frame, LLMTokenFrame, ToolCallFrame, TranscriptFrame
from vbgraph.graph.builder import Graph
from vbgraph.nodes import log as log_module
from vbgraph.nodes.log import Log


def test_audio_frames_print_format_samples_pts_and_epoch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One line per frame on stdout, labelled with the node id."""
    g = Graph("log")
    g.chain(g.add("tone", duration_ms=60), g.add("log", id="mic"))
    result, _ = run_graph(g)
    assert result.ok
    assert capsys.readouterr().out.splitlines() == [
        "[mic] audio pcm_s16le/16000Hz/1ch 320 samples pts=0.000s epoch=0",
        "[mic] audio pcm_s16le/16000Hz/1ch 320 samples pts=0.020s epoch=0",
        "[mic] audio pcm_s16le/16000Hz/1ch 320 samples pts=0.040s epoch=0",
    ]


def test_text_frames_show_their_text(capsys: pytest.CaptureFixture[str]) -> None:
    """Text frames print the text, quoted."""
    g = Graph("texts")
    g.chain(g.add("test.texts", count=2), g.add("log", label="agent"))
    run_graph(g)
    assert capsys.readouterr().out.splitlines() == [
        "[agent] text 't0' pts=0.000s epoch=0",
        "[agent] text 't1' pts=0.000s epoch=0",
    ]


@pytest.mark.parametrize(
    ("frame", "line"),
    [
        (TranscriptFrame("hi", final=False, pts=10**9), "transcript 'hi' interim confidence=1.00"),
        (LLMTokenFrame("Hel", epoch=2), "llm_token 'Hel'"),
        (ToolCallFrame("c1", "lookup", '{"q": 1}'), 'tool_call lookup({"q": 1}) id=c1'),
        (EndFrame(), "end 'end of stream'"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Frame) else "",
)
def test_other_kinds_show_what_identifies_them(
    frame: Frame, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Transcripts, tokens, tool calls and end markers each get a readable line."""
    node, _ = make_node(Log)
    node.process("in", frame)
    printed = capsys.readouterr().out
    assert printed == f"[n] {line} pts={frame.pts / 1e9:.3f}s epoch={frame.epoch}\n"


def test_every_n_logs_only_every_nth_frame(capsys: pytest.CaptureFixture[str]) -> None:
    """every: 3 over 10 frames logs frames 0, 3, 6 and 9."""
    g = Graph("every")
    g.chain(g.add("tone", duration_ms=200), g.add("log", id="l", every=3))
    run_graph(g)
    pts = [line.split("pts=")[1].split("s")[0] for line in capsys.readouterr().out.splitlines()]
    assert pts == ["0.000", "0.060", "0.120", "0.180"]


def test_logger_output_goes_to_vbgraph_log_at_info(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """to: logger writes the same lines to the 'vbgraph.log' logger, nothing to stdout."""
    node, _ = make_node(Log, to="logger")
    with caplog.at_level(logging.INFO, logger="vbgraph.log"):
        node.process("in", audio(s16([0] * 160), AudioFormat(8000), pts=20_000_000))
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "vbgraph.log",
            logging.INFO,
            "[n] audio pcm_s16le/8000Hz/1ch 160 samples pts=0.020s epoch=0",
        )
    ]
    assert capsys.readouterr().out == ""


def test_lines_are_not_built_when_nobody_will_read_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Skipped frames and a logger above INFO cost no string formatting."""
    built: list[str] = []
    real = log_module._line

    def counting(label: str, frame: Frame) -> str:
        built.append(label)
        return real(label, frame)

    monkeypatch.setattr(log_module, "_line", counting)
    node, _ = make_node(Log, to="logger")
    with caplog.at_level(logging.WARNING, logger="vbgraph.log"):
        for _ in range(5):
            node.process("in", EndFrame())
    assert built == []
    node, _ = make_node(Log, every=4)
    for _ in range(5):
        node.process("in", EndFrame())
    assert built == ["n", "n"]


def test_frames_pass_on_through_out_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    """log can sit in a chain: downstream gets every frame, as the same object."""
    node, out = make_node(Log)
    frame = EndFrame()
    node.process("in", frame)
    assert out == [("out", frame)] and out[0][1] is frame
    g = Graph("chain")
    g.chain(g.add("tone", duration_ms=100), g.add("log"), g.add("test.collect", id="after"))
    result, nodes = run_graph(g)
    after = nodes["after"]
    assert isinstance(after, Collect) and len(after.frames) == 5
    assert result.nodes["log"].unconnected == 0
    capsys.readouterr()
