"""report.json and report.html (vbgraph.bench.report)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from vbgraph.bench import figures
from vbgraph.bench.conversation import Conversation, synthesize
from vbgraph.bench.report import REPORT_JSON_SCHEMA, REPORT_SCHEMA, report_data, write_report
from vbgraph.bench.runner import BenchOptions, BenchResult, run_bench
from vbgraph.bench.sweep import parse_sweep

from .conftest import FIXED

DATA = Path(__file__).parent / "data"


REPLY = (
    'llm.replies=["Sure. We have tables free on Friday evening from six until ten, '
    'and on Saturday from five."]'
)


@pytest.fixture
def result(graph: Path, tmp_path: Path) -> BenchResult:
    """Two sweep points of two sessions each, fixed latencies, the caller barging in."""
    caller = synthesize(tmp_path / "caller.wav", 4, gap_s=2.5)
    return run_bench(
        graph,
        [caller],
        sweeps=[parse_sweep("turn.min_delay_ms=200,400")],
        options=BenchOptions(sessions=2),
        overrides=[*FIXED[:3], REPLY],
    )


def _shape(data: object) -> object:
    """The keys of ``data`` at every level, lists reduced to their first item."""
    if isinstance(data, dict):
        return {k: _shape(v) for k, v in sorted(data.items())}
    if isinstance(data, list):
        return [_shape(data[0])] if data else []
    return type(data).__name__


class TestJson:
    def test_the_report_validates_against_its_schema(self, result: BenchResult) -> None:
        """report_data matches REPORT_JSON_SCHEMA."""
        data = report_data(result)
        jsonschema.validate(data, REPORT_JSON_SCHEMA)
        assert data["schema"] == REPORT_SCHEMA == "vbgraph.bench/1"

    def test_the_report_shape_is_stable(self, result: BenchResult) -> None:
        """Every key at every level is the one in data/report_shape.json (CI reads them)."""
        data = report_data(result)
        # values that vary by machine or with None-able figures are compared by key only
        shape = json.loads(json.dumps(_shape(data)))
        golden = json.loads((DATA / "report_shape.json").read_text(encoding="utf-8"))
        assert _keys(shape) == _keys(golden)

    def test_the_figures_are_in_the_json(self, result: BenchResult) -> None:
        """Stage percentiles per point reflect the run (min_delay moves only turn)."""
        low, high = report_data(result)["points"]
        assert low["settings"] == {"turn.min_delay_ms": "200"}
        assert low["stages_ms"]["stt"]["p50"] == 180.0
        assert high["stages_ms"]["turn"]["p50"] - low["stages_ms"]["turn"]["p50"] == 200.0
        assert low["turns"] == 8 and low["sessions_ok"] == 2
        assert low["losses"] == {"drops": 0, "lost": 0, "stale": 0, "flushed": 0, "errors": 0}
        assert len(low["sessions"][0]["turns"]) == 4

    def test_write_report_writes_json_that_loads_back(
        self, result: BenchResult, tmp_path: Path
    ) -> None:
        """report.json holds the same data."""
        write_report(result, tmp_path / "out")
        data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
        jsonschema.validate(data, REPORT_JSON_SCHEMA)
        assert [p["label"] for p in data["points"]] == [
            "turn.min_delay_ms=200",
            "turn.min_delay_ms=400",
        ]


def _keys(shape: object, prefix: str = "") -> set[str]:
    if isinstance(shape, dict):
        out = set()
        for k, v in shape.items():
            out.add(prefix + k)
            out |= _keys(v, prefix + k + ".")
        return out
    if isinstance(shape, list) and shape:
        return _keys(shape[0], prefix + "[].")
    return set()


class TestHtml:
    def test_the_page_embeds_the_figures_when_matplotlib_is_installed(
        self, result: BenchResult, tmp_path: Path
    ) -> None:
        """Waterfall, CDF and sweep curves, as PNG data URIs: one self-contained file."""
        pytest.importorskip("matplotlib")
        written = write_report(result, tmp_path)
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        images = re.findall(
            r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page
        )
        assert [alt for alt, _ in images] == ["sweep curves", "latency waterfall", "CDF per stage"]
        assert all(len(b64) > 2000 for _, b64 in images)
        assert {p.name for p in written} >= {"waterfall.png", "cdf.png", "sweep.png"}
        assert (tmp_path / "cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 'src="http' not in page and "<script" not in page  # nothing fetched

    def test_without_matplotlib_the_page_says_so_and_keeps_the_tables(
        self, result: BenchResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No figures, a note naming the extra, every table still there."""
        monkeypatch.setattr(figures, "available", lambda: False)
        written = write_report(result, tmp_path)
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "matplotlib is not installed" in page and "vbgraph[bench]" in page
        assert "<img" not in page
        assert page.count("<h2>Point") == 2 and "perceived" in page
        assert {p.name for p in written} == {"report.json", "report.html"}

    def test_one_point_has_no_sweep_section(
        self, graph: Path, caller: Conversation, tmp_path: Path
    ) -> None:
        """Sweep curves need two points or more."""
        pytest.importorskip("matplotlib")
        write_report(run_bench(graph, [caller], overrides=FIXED), tmp_path)
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "<h2>Sweep</h2>" not in page and 'alt="latency waterfall"' in page
        assert not (tmp_path / "sweep.png").exists()
