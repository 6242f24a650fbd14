"""The ``vbgraph bench`` command (vbgraph.cli.bench)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vbgraph.bench.conversation import Conversation
from vbgraph.bench.report import REPORT_JSON_SCHEMA
from vbgraph.cli.main import main

from .conftest import FIXED


def _bench(graph: Path, caller: Conversation, *extra: str) -> list[str]:
    args = ["bench", str(graph), "--conversation", str(caller.wav)]
    for override in FIXED:
        args += ["--set", override]
    return [*args, *extra]


class TestCommand:
    def test_it_prints_percentiles_per_stage(
        self, graph: Path, caller: Conversation, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One table per point: a row per stage with p50 p90 p95 p99."""
        assert main(_bench(graph, caller)) == 0
        out = capsys.readouterr().out
        assert "point 1/1 baseline: 4 turns" in out
        assert "stage                n     p50     p90     p95     p99" in out
        assert "stt                  4     180     180     180     180" in out
        assert "llm                  4     420     420     420     420" in out
        assert "drops 0;" in out

    def test_a_sweep_prints_one_row_per_point_and_writes_the_report(
        self,
        graph: Path,
        caller: Conversation,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--sweep runs every value; --report writes JSON and HTML."""
        code = main(
            _bench(
                graph,
                caller,
                "--sessions",
                "2",
                "--sweep",
                "llm.ttft.p50_ms=300,600",
                "--report",
                str(tmp_path / "r"),
            )
        )
        assert code == 0
        out = capsys.readouterr().out
        assert "sweep: perceived latency (ms)" in out
        assert "llm.ttft.p50_ms=300" in out and "llm.ttft.p50_ms=600" in out
        data = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
        assert [p["stages_ms"]["llm"]["p50"] for p in data["points"]] == [300.0, 600.0]
        assert data["sessions"] == 2
        assert (tmp_path / "r" / "report.html").is_file()

    def test_json_goes_to_stdout_and_progress_to_stderr(
        self, graph: Path, caller: Conversation, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json: stdout is exactly the report, valid against its schema."""
        assert main(_bench(graph, caller, "--json")) == 0
        captured = capsys.readouterr()
        jsonschema.validate(json.loads(captured.out), REPORT_JSON_SCHEMA)
        assert "point 1/1" in captured.err

    def test_quiet_prints_nothing_on_success(
        self, graph: Path, caller: Conversation, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-q: no progress, no tables."""
        assert main(_bench(graph, caller, "-q")) == 0
        assert capsys.readouterr().out == ""

    def test_a_failed_session_exits_1_and_names_it(
        self, graph: Path, caller: Conversation, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A provider failing at start: exit 1, the session and error on stderr."""
        assert main(_bench(graph, caller, "-q", "--set", "tts.faults.start=true")) == 1
        err = capsys.readouterr().err
        assert "session bench-0 failed" in err and "modelled connection failure" in err

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["--sweep", "nonsense"], "--sweep 'nonsense'"),
            (["--sessions", "0"], "--sessions must be at least 1"),
            (["--sweep", "ghost.x=1,2"], "no node 'ghost'"),
        ],
    )
    def test_bad_options_exit_2_with_a_clear_message(
        self,
        graph: Path,
        caller: Conversation,
        capsys: pytest.CaptureFixture[str],
        extra: list[str],
        message: str,
    ) -> None:
        """Usage and config errors: exit code 2, one line naming the problem."""
        assert main(_bench(graph, caller, "-q", *extra)) == 2
        assert message in capsys.readouterr().err

    def test_a_missing_conversation_exits_2(
        self, graph: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--conversation that does not exist: exit 2."""
        code = main(["bench", str(graph), "--conversation", str(tmp_path / "x.wav")])
        assert code == 2
        assert "no such WAV file" in capsys.readouterr().err
