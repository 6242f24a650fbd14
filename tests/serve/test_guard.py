"""The front door: rate limit per client address and bearer-token auth."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import SecretStr

from vbgraph.graph.load import loads
from vbgraph.serve import ServeConfig, Server
from vbgraph.serve.guard import TokenBucket, is_open_path

from .support import ECHO, RequestCallHandler, parse_prometheus


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestTokenBucket:
    def test_a_burst_up_to_the_rate_then_a_wait_that_refills(self) -> None:
        """60/min: 60 at once, the 61st waits ~1 s, and one second later one more is allowed."""
        t = FakeTime()
        bucket = TokenBucket(60, t)
        assert all(bucket.take("a") == 0 for _ in range(60))
        assert bucket.take("a") == pytest.approx(1.0)
        assert bucket.take("b") == 0  # another client is not affected
        t.now += 1.0
        assert bucket.take("a") == 0

    def test_zero_means_no_limit(self) -> None:
        """rate_limit_per_minute 0 disables the limiter."""
        bucket = TokenBucket(0)
        assert all(bucket.take("a") == 0 for _ in range(1000))

    def test_memory_stays_bounded_with_many_clients(self) -> None:
        """At max_keys, refilled buckets are forgotten before a new one is kept."""
        t = FakeTime()
        bucket = TokenBucket(10, t, max_keys=100)
        for i in range(100):
            bucket.take(f"c{i}")
        t.now += 60
        bucket.take("new")
        assert len(bucket._buckets) <= 100


def test_open_paths() -> None:
    """Health, metrics, the page and provider-signed telephony need no token."""
    assert all(map(is_open_path, ["/", "/health", "/metrics", "/static/app.js", "/twilio"]))
    assert not any(map(is_open_path, ["/ws", "/offer", "/call"]))


def run_requests(config: ServeConfig, calls: list[tuple[str, dict[str, str]]]) -> list[int]:
    async def main() -> list[int]:
        srv = Server(loads(ECHO).compile(), config, [RequestCallHandler()])
        statuses = []
        async with srv, aiohttp.ClientSession() as http:
            for path, headers in calls:
                async with http.post(f"{srv.url}{path}", data=b"", headers=headers) as resp:
                    statuses.append(resp.status)
                    if resp.status == 429:
                        assert int(resp.headers["Retry-After"]) >= 1
                    if resp.status in (401, 429):
                        body = await resp.json()
                        assert body["error"]["code"] in ("unauthorized", "rate_limited")
            async with http.get(f"{srv.url}/metrics") as resp:
                metrics = parse_prometheus(await resp.text())
        rejected = {lb["reason"]: v for lb, v in metrics["vbgraph_requests_rejected_total"]}
        statuses.append(int(rejected["unauthorized"] + rejected["rate_limited"]))
        return statuses

    return asyncio.run(main())


def test_a_token_is_required_when_configured() -> None:
    """No token or a wrong one: 401; header or ?token= with the right one: served."""
    config = ServeConfig(port=0, auth_token=SecretStr("s3cret"), rate_limit_per_minute=0)
    statuses = run_requests(
        config,
        [
            ("/call", {}),
            ("/call", {"Authorization": "Bearer nope"}),
            ("/call", {"Authorization": "Bearer s3cret"}),
            ("/call?token=s3cret", {}),
        ],
    )
    assert statuses == [401, 401, 200, 200, 2]


def test_a_client_over_its_rate_is_refused_with_retry_after() -> None:
    """rate_limit_per_minute 3: the fourth request in a burst is 429, counted."""
    config = ServeConfig(port=0, rate_limit_per_minute=3)
    statuses = run_requests(config, [("/call", {})] * 4)
    assert statuses == [200, 200, 200, 429, 1]


def test_a_user_hook_replaces_the_token_check() -> None:
    """authorize(request) decides; it may be async."""

    async def only_acme(request: object) -> bool:
        return getattr(request, "headers", {}).get("X-Tenant") == "acme"

    async def main() -> list[int]:
        srv = Server(
            loads(ECHO).compile(),
            ServeConfig(port=0, rate_limit_per_minute=0),
            [RequestCallHandler()],
            authorize=only_acme,
        )
        out = []
        async with srv, aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Tenant": "acme"}):
                async with http.post(f"{srv.url}/call", data=b"", headers=headers) as resp:
                    out.append(resp.status)
        return out

    assert asyncio.run(main()) == [401, 200]
