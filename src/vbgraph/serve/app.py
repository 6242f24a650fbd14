"""The server: one aiohttp application per process, the graph's transports mounted on it.

``vbgraph serve GRAPH.yaml`` builds a :class:`Server`; tests build one on port 0.
Routes: ``GET /health`` (readiness: 200 when calls are admitted, 503 when full
or draining; JSON body with liveness and counters), ``GET /health/live``
(liveness: 200 while the process serves), and each transport's own routes
(see :mod:`vbgraph.serve.handler`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..graph.plan import Plan
from ..nodes.transport_in import TransportIn
from .calls import CallManager
from .config import ServeConfig
from .guard import Authorize, Guard
from .handler import TransportHandler, load_handler
from .metrics import Family, render

if TYPE_CHECKING:
    from ..observability.telemetry import Telemetry

__all__ = ["Server", "ServerContext", "served_transports"]


def served_transports(plan: Plan) -> tuple[str, ...]:
    """The transports the graph declares (its ``transport.in`` node's ``transports``)."""
    names: list[str] = []
    for planned in plan.nodes.values():
        if planned.cls is TransportIn:
            params = planned.params
            assert isinstance(params, TransportIn.Params)
            names.extend(n for n in params.transports if n not in names)
    return tuple(names)


@dataclass
class ServerContext:
    """What transport handlers get from the server."""

    plan: Plan
    config: ServeConfig
    calls: CallManager
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    """Connection tasks the server waits for (or cancels) on shutdown."""


class Server:
    """Serve ``plan`` on its transports; see the module docstring."""

    def __init__(
        self,
        plan: Plan,
        config: ServeConfig | None = None,
        handlers: list[TransportHandler] | None = None,
        *,
        authorize: Authorize | None = None,
        clock: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.config = config or ServeConfig()
        self.telemetry = telemetry
        """Watches every call (``--otel``); its metrics are added to ``/metrics``."""
        token = self.config.auth_token
        self.guard = Guard(
            None if token is None else token.get_secret_value(),
            self.config.rate_limit_per_minute,
            authorize,
            clock,
        )
        transports = served_transports(plan)
        if handlers is None:
            if not transports:
                from ..errors import ConfigError

                raise ConfigError(
                    f"graph '{plan.name}' has no transport.in node: nothing to serve "
                    "(add {type: transport.in} and {type: transport.out})"
                )
            handlers = [load_handler(name) for name in transports]
        self.handlers = handlers
        self.context = ServerContext(
            plan,
            self.config,
            CallManager(plan, max_sessions=self.config.max_sessions, observer=telemetry),
        )
        self.metric_labels: dict[str, str] = {}
        """Labels on every metric (``worker`` when several processes serve)."""
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def calls(self) -> CallManager:
        """The call manager (counters, live sessions)."""
        return self.context.calls

    def make_app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(middlewares=[self.guard.middleware])
        app.router.add_get("/health", self._health)
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/metrics", self._metrics)
        for handler in self.handlers:
            handler.add_routes(app, self.context)
        return app

    async def start(self) -> None:
        """Listen on the configured host and port."""
        self._runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner,
            self.config.host,
            self.config.port,
            reuse_port=self.config.reuse_port or None,
        )
        await self._site.start()

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        assert self._runner is not None, "Server.start() first"
        for addr in self._runner.addresses:
            return int(addr[1])
        raise RuntimeError("server is not listening")

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.config.host}:{self.port}"

    async def stop(self, drain_timeout_s: float | None = None) -> None:
        """Drain calls (refuse new ones, let live ones finish or end them), then close."""
        timeout = self.config.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        await self.calls.drain(timeout)
        tasks = list(self.context.tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- routes --------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        c = self.calls.counters()
        ready = not c.draining and c.active < c.max_sessions
        body = {
            "live": True,
            "ready": ready,
            "draining": c.draining,
            "active_sessions": c.active,
            "max_sessions": c.max_sessions,
        }
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        families = self.calls.metric_families()
        families.append(
            Family(
                "vbgraph_requests_rejected_total",
                "counter",
                "Requests refused at the front door, by reason.",
                [({"reason": k}, v) for k, v in sorted(self.guard.rejected.items())],
            )
        )
        if self.telemetry is not None:  # OpenTelemetry's metrics; the names above win
            families += self.telemetry.prometheus_families(exclude={f.name for f in families})
        text = render(families, self.metric_labels)
        return web.Response(
            body=text.encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})
