"""The server's front door: per-client rate limit and bearer-token auth (aiohttp middleware).

* *Rate limit* (the framework's fallback; a real deployment also limits at its
  proxy): each client address gets a token bucket of ``rate_limit_per_minute``
  new requests, refilled continuously. Over it: 429 with ``Retry-After`` and a
  JSON error, counted in ``/metrics``.
* *Auth*: when a token is configured (``ServeConfig.auth_token`` or
  ``$VBGRAPH_SERVE_TOKEN``), requests must carry ``Authorization: Bearer
  <token>`` or ``?token=<token>`` (browsers cannot set headers on a WebSocket).
  A user hook ``authorize(request) -> bool`` replaces the token check.
  Health, metrics and the web page are open; telephony routes authenticate by
  their provider's signature in their own handlers.
"""

from __future__ import annotations

import hmac
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["Authorize", "Guard", "TokenBucket", "is_open_path"]

Authorize = Callable[[web.Request], bool | Awaitable[bool]]
"""A user auth hook: True lets the request in."""

_OPEN_EXACT = frozenset({"/", "/health", "/health/live", "/metrics", "/favicon.ico"})
_OPEN_PREFIXES = ("/static/", "/twilio", "/telnyx", "/plivo", "/exotel", "/vonage")


def is_open_path(path: str) -> bool:
    """Paths that need no token (health, metrics, the page, provider-signed telephony)."""
    return path in _OPEN_EXACT or path.startswith(_OPEN_PREFIXES)


@dataclass(slots=True)
class TokenBucket:
    """Token buckets per key: ``rate_per_minute`` requests, bursts up to the same number."""

    rate_per_minute: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0 if allowed, else seconds until one is available."""
        if self.rate_per_minute <= 0:
            return 0.0
        now = self.clock()
        per_s = self.rate_per_minute / 60
        tokens, last = self._buckets.get(key, (float(self.rate_per_minute), now))
        tokens = min(float(self.rate_per_minute), tokens + (now - last) * per_s)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / per_s
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget_full(now, per_s)
        self._buckets[key] = (tokens - 1, now)
        return 0.0

    def _forget_full(self, now: float, per_s: float) -> None:
        # Bound memory: drop clients whose buckets have refilled (they lose nothing).
        full = float(self.rate_per_minute)
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * per_s >= full:
                del self._buckets[key]


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


class Guard:
    """The middleware; ``rejected`` counts refusals by reason for ``/metrics``."""

    def __init__(
        self,
        token: str | None,
        rate_per_minute: int,
        authorize: Authorize | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token if token is not None else os.environ.get("VBGRAPH_SERVE_TOKEN")
        self.authorize = authorize
        self.buckets = TokenBucket(rate_per_minute, clock)
        self.rejected: dict[str, int] = {"rate_limited": 0, "unauthorized": 0}

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Rate limit every request but health checks and scrapes; then check auth."""
        path = request.path
        if path not in ("/health", "/health/live", "/metrics"):
            wait = self.buckets.take(request.remote or "?")
            if wait:
                self.rejected["rate_limited"] += 1
                return _error(
                    429,
                    "rate_limited",
                    "too many requests from this address; retry later",
                    **{"Retry-After": str(max(1, round(wait)))},
                )
        if not is_open_path(path) and not await self._allowed(request):
            self.rejected["unauthorized"] += 1
            return _error(401, "unauthorized", "a valid bearer token is required")
        return await handler(request)

    async def _allowed(self, request: web.Request) -> bool:
        if self.authorize is not None:
            verdict = self.authorize(request)
            return bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)
        if not self.token:
            return True
        given = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())
