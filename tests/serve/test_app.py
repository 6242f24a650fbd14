"""The server: health, metrics, refusal when full, transports from the graph."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from vbgraph.errors import ConfigError
from vbgraph.graph.load import loads
from vbgraph.serve import ServeConfig, Server, served_transports

from .support import ECHO, RequestCallHandler, parse_prometheus


def tone(seconds: float) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (6000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def server(max_sessions: int = 4) -> tuple[Server, RequestCallHandler]:
    handler = RequestCallHandler()
    srv = Server(loads(ECHO).compile(), ServeConfig(port=0, max_sessions=max_sessions), [handler])
    return srv, handler


def test_the_transports_come_from_the_graphs_transport_in_node() -> None:
    """served_transports reads transport.in's `transports` param."""
    assert served_transports(loads(ECHO).compile()) == ("websocket",)


def test_a_graph_without_transport_in_is_refused_with_a_clear_error() -> None:
    """Nothing to serve: the error says what to add."""
    plan = loads(
        "version: 1\nname: plain\nnodes:\n  t: {type: tone}\n  s: {type: log}\nedges: [t -> s]\n"
    ).compile()
    with pytest.raises(ConfigError, match=r"no transport\.in"):
        Server(plan)


def test_a_call_round_trips_and_shows_in_metrics() -> None:
    """After one call, /metrics (valid text format) counts it and its duration."""

    async def main() -> tuple[int, dict[str, list[tuple[dict[str, str], float]]], str]:
        srv, _ = server()
        async with srv, aiohttp.ClientSession() as http:
            async with http.post(f"{srv.url}/call", data=tone(0.3)) as resp:
                back = await resp.read()
            async with http.get(f"{srv.url}/metrics") as resp:
                ctype = resp.headers["Content-Type"]
                metrics = parse_prometheus(await resp.text())
        return len(back), metrics, ctype

    n, metrics, ctype = asyncio.run(main())
    assert n >= len(tone(0.3)) - 640
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
    assert metrics["vbgraph_calls_started_total"] == [({"transport": "request"}, 1.0)]
    assert metrics["vbgraph_calls_ended_total"] == [({"transport": "request"}, 1.0)]
    assert ({}, 0.0) in metrics["vbgraph_sessions_active"]
    assert metrics["vbgraph_call_duration_seconds_count"] == [({}, 1.0)]
    buckets = metrics["vbgraph_call_duration_seconds_bucket"]
    assert buckets[-1] == ({"le": "+Inf"}, 1.0)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert metrics["vbgraph_frames_lost_total"] == [({}, 0.0)]


def test_health_is_503_while_full_and_a_full_server_refuses_calls() -> None:
    """Readiness follows admission: full → 503 on /health and on new calls."""

    async def main() -> tuple[int, int, int, int, float]:
        srv, handler = server(max_sessions=1)
        async with srv, aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/health") as resp:
                ready = resp.status
            hold = asyncio.create_task(http.post(f"{srv.url}/hold"))
            await handler.held.wait()
            async with http.get(f"{srv.url}/health") as resp:
                full = resp.status
            async with http.post(f"{srv.url}/call", data=tone(0.1)) as resp:
                refused = resp.status
            async with http.get(f"{srv.url}/health/live") as resp:
                live = resp.status
            handler.release.set()
            (await hold).release()
            async with http.get(f"{srv.url}/metrics") as resp:
                metrics = parse_prometheus(await resp.text())
        refused_full = dict(
            (labels["reason"], v) for labels, v in metrics["vbgraph_calls_refused_total"]
        )["full"]
        return ready, full, refused, live, refused_full

    assert asyncio.run(main()) == (200, 503, 503, 200, 1.0)
