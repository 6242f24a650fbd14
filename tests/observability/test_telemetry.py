"""Telemetry's exporters (console, OTLP to a collector on loopback), and zero cost when off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from obs_support import conversation_plan, run

from vbgraph.errors import ConfigError
from vbgraph.observability import ObservabilityConfig, Telemetry

ROOT = Path(__file__).resolve().parents[2]
TINY = """
version: 1
name: tiny
nodes:
  tone: {type: tone, duration_ms: 200}
  gain: {type: gain, db: -3}
  turns: {type: log.turns, quiet: true}
edges: [tone -> gain -> turns]
"""


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VBGRAPH_OTEL", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
        cwd=ROOT,
        check=False,
    )


class TestOff:
    def test_with_observability_off_nothing_from_opentelemetry_is_imported(
        self, tmp_path: Path
    ) -> None:
        """vb.run, the CLI and a log.turns graph, in a fresh process: no opentelemetry module."""
        graph = tmp_path / "tiny.yaml"
        graph.write_text(TINY)
        code = f"""
import sys
import vbgraph as vb
from vbgraph.cli.main import main
result = vb.run({str(graph)!r}, virtual_time=True)
assert result.ok, result.errors
assert main(["run", {str(graph)!r}, "--virtual-time", "--quiet"]) == 0
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
print(loaded)
"""
        done = _python(code)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_vbgraph_otel_switches_vb_run_on_with_the_shared_telemetry(
        self, tmp_path: Path
    ) -> None:
        """VBGRAPH_OTEL=console: spans and metrics on stderr, flushed at exit."""
        graph = tmp_path / "tiny.yaml"
        graph.write_text(TINY)
        code = f"import vbgraph as vb; assert vb.run({str(graph)!r}, virtual_time=True).ok"
        done = _python(code, {"VBGRAPH_OTEL": "console", "VBGRAPH_OTEL_SAMPLE_S": "0"})
        assert done.returncode == 0, done.stderr
        assert '"name": "session"' in done.stderr
        assert "vbgraph.node.process.duration" in done.stderr


class TestCommandLine:
    def test_run_with_otel_console_prints_telemetry_to_stderr_only(self, tmp_path: Path) -> None:
        """stdout keeps the result JSON; metrics and spans go to stderr."""
        graph = tmp_path / "tiny.yaml"
        graph.write_text(TINY)
        done = subprocess.run(
            [sys.executable, "-m", "vbgraph", "run", str(graph), "--virtual-time", "--json",
             "--otel", "console"],
            capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"] is True
        assert "vbgraph.sessions.active" in done.stderr and '"name": "session"' in done.stderr

    def test_run_refuses_the_prometheus_exporter_with_exit_code_2(self, tmp_path: Path) -> None:
        """Only serve has /metrics: a usage error, before anything runs."""
        graph = tmp_path / "tiny.yaml"
        graph.write_text(TINY)
        env = {**os.environ, "VBGRAPH_OTEL": "prometheus"}
        done = subprocess.run(
            [sys.executable, "-m", "vbgraph", "run", str(graph), "--virtual-time"],
            capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=env,
        )  # fmt: skip
        assert done.returncode == 2
        assert "exporter 'prometheus' is only for `vbgraph serve`" in done.stderr


class Collector(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP collector: protobuf bodies on /v1/metrics and /v1/traces."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestOtlp:
    def test_otlp_sends_metrics_and_spans_to_the_collector_as_protobuf(
        self, collector: str
    ) -> None:
        """Shutdown flushes: one metrics and one traces request, decoded and checked."""
        pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        config = ObservabilityConfig(exporter="otlp", otlp_endpoint=collector, service_name="t1")
        telemetry = Telemetry.from_config(config)
        assert run(conversation_plan(), telemetry).result.ok
        telemetry.shutdown()
        by_path = {path: (ctype, body) for path, ctype, body in Collector.received}
        assert set(by_path) == {"/v1/metrics", "/v1/traces"}
        assert all(ctype == "application/x-protobuf" for ctype, _ in by_path.values())
        metrics = ExportMetricsServiceRequest.FromString(by_path["/v1/metrics"][1])
        names = {
            m.name for rm in metrics.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }
        assert {"vbgraph.turn.voice_to_voice", "gen_ai.client.operation.duration"} <= names
        service = {
            a.value.string_value
            for rm in metrics.resource_metrics
            for a in rm.resource.attributes
            if a.key == "service.name"
        }
        assert service == {"t1"}
        traces = ExportTraceServiceRequest.FromString(by_path["/v1/traces"][1])
        spans = [s.name for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert spans.count("turn") == 4 and spans.count("session") == 1

    def test_without_the_otlp_package_the_error_says_which_extra_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A ConfigError naming vbgraph[otlp], not an ImportError."""
        monkeypatch.setitem(
            sys.modules, "opentelemetry.exporter.otlp.proto.http.metric_exporter", None
        )
        with pytest.raises(ConfigError, match=r"pip install 'vbgraph\[otlp\]'"):
            Telemetry.from_config(ObservabilityConfig(exporter="otlp"))


def test_memory_exporter_keeps_metrics_and_spans_for_tests() -> None:
    """exporter=memory: the reader and the span exporter are on the Telemetry."""
    telemetry = Telemetry.from_config(ObservabilityConfig(exporter="memory"))
    assert telemetry.memory_reader is not None and telemetry.memory_spans is not None
    run(conversation_plan(), telemetry)
    assert len([s for s in telemetry.memory_spans.get_finished_spans() if s.name == "turn"]) == 4
    telemetry.shutdown()
