"""OpenTelemetry metrics as Prometheus text: names, types, cumulative buckets, serve's /metrics."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest
from obs_support import conversation_plan, memory_telemetry, run
from tests.serve.support import ECHO, RequestCallHandler, parse_prometheus

from vbgraph.graph.load import loads
from vbgraph.observability import ObservabilityConfig, Telemetry
from vbgraph.observability.prometheus import families, label_name, metric_name
from vbgraph.serve import ServeConfig, Server
from vbgraph.serve.metrics import render


class TestNames:
    @pytest.mark.parametrize(
        ("name", "unit", "counter", "expected"),
        [
            ("vbgraph.node.process.duration", "s", False, "vbgraph_node_process_duration_seconds"),
            ("vbgraph.edge.dropped", "{frame}", True, "vbgraph_edge_dropped_total"),
            ("vbgraph.sessions.active", "{session}", False, "vbgraph_sessions_active"),
            ("gen_ai.client.token.usage", "{token}", False, "gen_ai_client_token_usage"),
            ("http.server.duration", "ms", False, "http_server_duration_milliseconds"),
            ("already_seconds", "s", False, "already_seconds"),
            ("requests_total", "", True, "requests_total"),
            ("9lives", None, False, "_9lives"),
        ],
    )
    def test_metric_names_follow_the_otel_to_prometheus_rules(
        self, name: str, unit: str | None, counter: bool, expected: str
    ) -> None:
        """Dots become underscores, the unit is appended, counters end in _total."""
        assert metric_name(name, unit, counter=counter) == expected

    def test_attribute_keys_become_valid_label_names(self) -> None:
        """node.id → node_id; gen_ai.request.model → gen_ai_request_model."""
        assert label_name("node.id") == "node_id"
        assert label_name("gen_ai.request.model") == "gen_ai_request_model"


def test_a_conversations_metrics_render_as_valid_exposition_text() -> None:
    """Histograms keep their buckets, made cumulative; +Inf equals the count."""
    telemetry, reader, _ = memory_telemetry(node_sample_interval_s=0)
    run(conversation_plan(), telemetry)
    fams = families(reader.get_metrics_data())
    kinds = {f.name: f.kind for f in fams}
    assert kinds["vbgraph_turn_voice_to_voice_seconds"] == "histogram"
    assert kinds["vbgraph_sessions_active"] == "gauge"  # an up-down counter is no counter
    assert kinds["gen_ai_client_operation_duration_seconds"] == "histogram"
    parsed = parse_prometheus(render(fams))
    buckets = parsed["vbgraph_node_process_duration_seconds_bucket"]
    for labels in ({"node_id": "vad", "node_type": "vad.native"},):
        series = [v for lab, v in buckets if {k: lab[k] for k in labels} == labels]
        assert series == sorted(series)  # cumulative
        count = [
            v
            for lab, v in parsed["vbgraph_node_process_duration_seconds_count"]
            if lab["node_id"] == "vad"
        ]
        assert series[-1] == count[0] > 0
    (v2v,) = parsed["vbgraph_turn_voice_to_voice_seconds_count"]
    assert v2v == ({}, 4.0)


def test_a_name_the_server_serves_is_left_out() -> None:
    """exclude: the server's own family wins, the text has each name once."""
    telemetry, reader, _ = memory_telemetry()
    run(conversation_plan(), telemetry)
    names = [f.name for f in families(reader.get_metrics_data(), {"vbgraph_sessions_active"})]
    assert "vbgraph_sessions_active" not in names and len(names) == len(set(names))


def test_serve_metrics_include_the_otel_families_when_observability_is_on() -> None:
    """One call through a server with --otel prometheus: /metrics has both kinds of family."""
    config = ObservabilityConfig(exporter="prometheus", node_sample_interval_s=0)
    telemetry = Telemetry.from_config(config, pull=True)
    assert telemetry.tracer is None  # prometheus: metrics only

    async def main() -> dict[str, list[tuple[dict[str, str], float]]]:
        handler = RequestCallHandler()
        srv = Server(loads(ECHO).compile(), ServeConfig(port=0), [handler], telemetry=telemetry)
        pcm = (np.sin(np.arange(4800) / 5) * 5000).astype("<i2").tobytes()
        async with srv, aiohttp.ClientSession() as http:
            async with http.post(f"{srv.url}/call", data=pcm) as resp:
                await resp.read()
            async with http.get(f"{srv.url}/metrics") as resp:
                return parse_prometheus(await resp.text())

    metrics = asyncio.run(main())
    telemetry.shutdown()
    assert metrics["vbgraph_calls_ended_total"] == [({"transport": "request"}, 1.0)]
    assert metrics["vbgraph_sessions_active"] == [({}, 0.0)]  # the server's own family
    counts = {
        lab["node_id"]: v for lab, v in metrics["vbgraph_node_process_duration_seconds_count"]
    }
    assert counts.keys() == {"gain", "speaker"} and all(v >= 1 for v in counts.values())
