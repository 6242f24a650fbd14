"""Tests for the vbgraph command: exit codes, validate, inspect, nodes, schema, run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from vbgraph import __version__
from vbgraph.cli.main import EXIT_INVALID, EXIT_OK, EXIT_RUNTIME, main
from vbgraph.io.wav import WavReader

pytestmark = pytest.mark.usefixtures("cli_nodes")

WriteGraph = Callable[[str], Path]
EXAMPLE = Path(__file__).parents[2] / "graphs" / "example.yaml"

GOOD = """\
version: 1
name: beeps
nodes:
  src: {type: cli.beeps, count: 4}
  out: {type: cli.speaker}
edges:
  - src -> out
"""

BAD = """\
version: 1
nodes:
  src: {type: cli.beeps}
  out: {type: cli.speaker, volume: loud}
edges:
  - src -> out
"""

FAILING = """\
version: 1
nodes:
  src: {type: cli.beeps}
  bad: {type: cli.broken}
edges:
  - src -> bad
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TestUsage:
    def test_version_prints_the_package_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints 'vbgraph X.Y.Z' and exits 0."""
        with pytest.raises(SystemExit) as info:
            main(["--version"])
        assert info.value.code == 0
        assert capsys.readouterr().out.strip() == f"vbgraph {__version__}"

    def test_no_command_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A command is required; argparse exits 2."""
        with pytest.raises(SystemExit) as info:
            main([])
        assert info.value.code == EXIT_INVALID
        assert "COMMAND" in capsys.readouterr().err


class TestValidate:
    def test_a_good_graph_validates_with_exit_0(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """validate prints 'ok' with the planned node and edge counts."""
        path = write_graph(GOOD)
        code, out, err = run_cli(capsys, "validate", str(path))
        assert code == EXIT_OK and err == ""
        assert out.strip() == f"{path}: ok (3 nodes, 2 edges)"

    def test_a_bad_graph_exits_2_with_file_line_column(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """The error on stderr starts with file:line:col, node and field."""
        path = write_graph(BAD)
        code, out, err = run_cli(capsys, "validate", str(path))
        assert code == EXIT_INVALID and out == ""
        assert err.startswith(f"vbgraph: error: {path}:4:36: node 'out' field 'volume': ")

    def test_a_missing_file_exits_2(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """An unreadable graph file is an invalid graph."""
        code, _, err = run_cli(capsys, "validate", str(tmp_path / "none.yaml"))
        assert code == EXIT_INVALID and "cannot read graph file" in err

    def test_set_overrides_are_applied(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """--set fixes the bad value; a bad --set is exit 2 naming it."""
        path = write_graph(BAD)
        code, _, _ = run_cli(capsys, "validate", str(path), "--set", "out.volume=0.5")
        assert code == EXIT_OK
        code, _, err = run_cli(capsys, "validate", str(path), "--set", "nope.volume=1")
        assert code == EXIT_INVALID and "--set 'nope.volume=1'" in err
        code, _, err = run_cli(capsys, "validate", str(path), "--set", "volume")
        assert code == EXIT_INVALID and "expected NODE.PARAM=VALUE" in err


class TestInspect:
    def test_inspect_shows_inserted_converters_and_edge_formats(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """The resampler negotiation inserted is listed with the edge it serves."""
        code, out, _ = run_cli(capsys, "inspect", str(write_graph(GOOD)))
        assert code == EXIT_OK
        assert re.search(
            r"src~out\.resample\s+convert\.resample .*\[inserted for src\.out -> out\.in\]", out
        )
        assert re.search(r"src\.out -> src~out\.resample\.in\s+pcm_s16le/16000Hz/1ch", out)
        assert re.search(r"src~out\.resample\.out -> out\.in\s+pcm_s16le/48000Hz/1ch", out)

    def test_inspect_dot_emits_a_digraph_of_the_plan(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """--dot prints DOT whose every statement parses and names declared nodes."""
        code, out, _ = run_cli(capsys, "inspect", "--dot", str(write_graph(GOOD)))
        assert code == EXIT_OK
        nodes, edges = parse_dot(out)
        assert nodes == {"src", "src~out.resample", "out"}
        assert edges == [("src", "src~out.resample"), ("src~out.resample", "out")]
        assert "style=dashed" in next(line for line in out.splitlines() if 'resample" [' in line)

    def test_inspect_of_a_bad_graph_exits_2(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """inspect compiles first, so it fails like validate."""
        code, _, err = run_cli(capsys, "inspect", str(write_graph(BAD)))
        assert code == EXIT_INVALID and ":4:36:" in err


_QUOTED = r'"(?:[^"\\]|\\.)*"'
_ATTRS = rf"\[(?:\s*\w+=(?:{_QUOTED}|[\w.]+)\s*,?)*\]"


def parse_dot(text: str) -> tuple[set[str], list[tuple[str, str]]]:
    """A strict little reader for the DOT subset plan_dot writes."""
    lines = text.strip().splitlines()
    assert re.fullmatch(rf"digraph {_QUOTED} \{{", lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes: set[str] = set()
    edges: list[tuple[str, str]] = []
    for line in lines[1:-1]:
        stmt = line.strip()
        if re.fullmatch(r"(rankdir=LR|node \[shape=box\]);", stmt):
            continue
        m = re.fullmatch(rf"({_QUOTED}) -> ({_QUOTED}) {_ATTRS};", stmt)
        if m:
            edges.append((json.loads(m.group(1)), json.loads(m.group(2))))
            continue
        m = re.fullmatch(rf"({_QUOTED}) {_ATTRS};", stmt)
        assert m, f"not a DOT statement: {stmt}"
        nodes.add(json.loads(m.group(1)))
    assert {n for e in edges for n in e} <= nodes
    return nodes, edges


class TestNodes:
    def test_nodes_lists_every_type_with_its_summary(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One line per registered type: name, then the first sentence of its docs."""
        code, out, _ = run_cli(capsys, "nodes")
        assert code == EXIT_OK
        assert re.search(r"^cli\.beeps\s+Emits a few 20 ms chunks", out, re.M)
        assert re.search(r"^convert\.resample\s+\S", out, re.M)

    def test_nodes_type_shows_its_params_and_ports(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The reference of one type: params table, inputs, outputs."""
        code, out, _ = run_cli(capsys, "nodes", "cli.speaker")
        assert code == EXIT_OK
        assert out.startswith("## `cli.speaker`")
        assert "| `volume` | `float` | `1.0` |" in out
        assert "- `in`: audio (pcm_s16le/48000Hz/anych)" in out

    def test_nodes_of_an_unknown_type_exits_2_with_a_hint(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A typo is an invalid request, with did-you-mean."""
        code, _, err = run_cli(capsys, "nodes", "cli.speakr")
        assert code == EXIT_INVALID and "did you mean 'cli.speaker'" in err

    def test_nodes_markdown_documents_every_type(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--markdown writes one section per type."""
        code, out, _ = run_cli(capsys, "nodes", "--markdown")
        assert code == EXIT_OK
        assert out.startswith("# Node reference")
        assert "## `cli.broken`" in out and "## `cli.beeps`" in out


class TestSchema:
    def test_schema_prints_the_json_schema(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The output is JSON naming every registered type."""
        code, out, _ = run_cli(capsys, "schema")
        assert code == EXIT_OK
        schema = json.loads(out)
        assert schema["title"] == "vbgraph graph"
        types = schema["properties"]["nodes"]["additionalProperties"]["properties"]["type"]
        assert "cli.beeps" in types["enum"]


class TestRun:
    def test_run_of_a_good_graph_exits_0_with_a_summary(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """The session ends and the per-node frame counts are printed."""
        code, out, _ = run_cli(capsys, "run", "--virtual-time", str(write_graph(GOOD)))
        assert code == EXIT_OK
        assert re.search(r"session \S+: ended", out)
        assert re.search(r"^\s+src~out\.resample\s+4 frames in", out, re.M)

    def test_run_json_reports_ok_and_statistics(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """--json gives a machine-readable result."""
        code, out, _ = run_cli(capsys, "run", "--virtual-time", "--json", str(write_graph(GOOD)))
        assert code == EXIT_OK
        result = json.loads(out)
        assert result["ok"] is True and result["graph"] == "beeps"
        assert result["nodes"]["src~out.resample"]["frames_in"] == 4
        assert result["nodes"]["out"]["frames_in"] > 0
        assert result["edges"]["src~out.resample.out -> out.in"]["drops"] == 0

    def test_run_quiet_prints_nothing_on_success(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """-q keeps a successful run silent."""
        assert run_cli(capsys, "run", "-q", "--virtual-time", str(write_graph(GOOD))) == (0, "", "")

    def test_run_events_prints_the_bus(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """--events prints each bus event as it happens."""
        code, out, _ = run_cli(capsys, "run", "--virtual-time", "--events", str(write_graph(GOOD)))
        assert code == EXIT_OK
        assert "event" in out and "SessionStateChanged" in out

    def test_a_node_that_raises_makes_run_exit_1(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """A node error is a runtime failure, reported with the node id."""
        code, out, _ = run_cli(capsys, "run", "--virtual-time", str(write_graph(FAILING)))
        assert code == EXIT_RUNTIME
        assert "bad" in out and "broken on purpose" in out

    def test_run_of_an_invalid_graph_or_bad_set_exits_2(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph
    ) -> None:
        """Nothing runs when the graph does not compile."""
        code, _, err = run_cli(capsys, "run", "--virtual-time", str(write_graph(BAD)))
        assert code == EXIT_INVALID and ":4:36:" in err
        code, _, err = run_cli(
            capsys, "run", "--virtual-time", str(write_graph(GOOD)), "--set", "src.count=many"
        )
        assert code == EXIT_INVALID and "(from --set 'src.count=many')" in err

    def test_run_of_built_in_nodes_writes_a_file(
        self, capsys: pytest.CaptureFixture[str], write_graph: WriteGraph, tmp_path: Path
    ) -> None:
        """tone → gain → file.sink with --set for the output path."""
        path = write_graph(
            "nodes:\n"
            "  a: {type: tone, duration_ms: 100}\n"
            "  g: {type: gain, db: -6}\n"
            "  out: {type: file.sink, path: x.wav}\n"
            "edges: [a -> g -> out]\n"
        )
        target = tmp_path / "y.wav"
        code, out, _ = run_cli(
            capsys, "run", "--virtual-time", str(path), "--set", f"out.path={target}"
        )
        assert code == EXIT_OK, out
        assert not (tmp_path / "x.wav").exists()
        with WavReader(target) as wav:
            assert wav.frames_total == wav.format.rate // 10  # 100 ms

    def test_the_example_graph_runs(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """The shipped example runs on virtual time and writes 48 kHz audio."""
        target = tmp_path / "out.wav"
        code, _, err = run_cli(
            capsys, "run", "--virtual-time", str(EXAMPLE), "--set", f"out.path={target}"
        )
        assert code == EXIT_OK, err
        with WavReader(target) as wav:
            assert wav.format.rate == 48000


def test_input_and_output_set_the_graph_variables(tmp_path: Path) -> None:
    """--input/--output fill ${INPUT}/${OUTPUT}, resolved against the working folder."""
    from tests.conftest import ROOT

    out = tmp_path / "o.wav"
    code = main(
        [
            "run",
            str(ROOT / "graphs" / "example.yaml"),
            "--input",
            str(ROOT / "graphs" / "samples" / "speech_16k.wav"),
            "--output",
            str(out),
            "--virtual-time",
            "-q",
        ]
    )
    assert code == 0 and out.exists() and out.stat().st_size > 300_000
