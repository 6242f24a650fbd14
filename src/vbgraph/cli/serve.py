"""``vbgraph serve GRAPH.yaml``: one process, or a supervisor and N workers sharing the port.

Theory of operation
-------------------
With ``--workers 1`` (the default) this process runs the server. SIGTERM or
SIGINT starts a graceful drain: new calls are refused (``/health`` turns 503),
live calls may finish for ``--drain-timeout`` seconds, then are ended cleanly;
the process then exits 0.

With ``--workers N`` this process is a supervisor: it picks the port (when
``--port 0``), starts N worker processes of this same command with
``--worker-id`` set, each listening on the port with ``SO_REUSEPORT`` (the
kernel spreads new connections over them), forwards SIGTERM/SIGINT to them,
and restarts a worker that dies unexpectedly (at most ``MAX_RESTARTS`` times a
minute). It exits when every worker has.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from ..clock import run_on_loop
from ..errors import ConfigError
from ..graph.plan import Plan
from ..observability.config import ObservabilityConfig, command_config
from ..runner import freeze_startup_objects, new_event_loop

__all__ = ["MAX_RESTARTS", "OTEL_HELP", "add_serve_parser", "cmd_serve"]

OTEL_HELP = (
    "metrics and traces (OpenTelemetry): console (stderr), otlp (a collector; "
    "the otlp extra), prometheus (serve: /metrics only); default $VBGRAPH_OTEL or none"
)

MAX_RESTARTS = 5
"""Worker restarts allowed per minute before the supervisor gives up."""

log = logging.getLogger("vbgraph.serve")


def add_serve_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The ``serve`` subcommand's arguments (the graph arguments are added by the caller)."""
    sp = sub.add_parser("serve", help="serve a graph to network callers (WebSocket, phone, WebRTC)")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8765, help="port (0: any free port; default 8765)")
    sp.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    sp.add_argument("--max-sessions", type=int, default=100, help="most calls per process")
    sp.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds live calls get on SIGTERM"
    )
    sp.add_argument(
        "--rate-limit", type=int, default=120, help="new connections per client per minute"
    )
    sp.add_argument("--public-url", help="base URL callers use (for TwiML and signatures)")
    sp.add_argument("--worker-id", type=int, default=0, help=argparse.SUPPRESS)
    sp.add_argument("--debug", action="store_true", help="asyncio debug mode")
    sp.add_argument("--otel", choices=("none", "console", "otlp", "prometheus"), help=OTEL_HELP)
    return sp


def cmd_serve(args: argparse.Namespace, plan: Plan, argv: Sequence[str]) -> int:
    """Run the ``serve`` command; ``argv`` is this process's arguments (for workers)."""
    from ..serve.app import served_transports
    from ..serve.config import ServeConfig

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not served_transports(plan):
        raise ConfigError(
            f"graph '{plan.name}' has no transport.in node: nothing to serve "
            "(add {type: transport.in} and {type: transport.out}, or use `vbgraph run`)"
        )
    otel = command_config(getattr(args, "otel", None), serve=True)  # checked before workers
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    if args.workers > 1 and not args.worker_id:
        return _supervise(args, argv)
    config = ServeConfig(
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        drain_timeout_s=args.drain_timeout,
        reuse_port=args.workers > 1,
        rate_limit_per_minute=args.rate_limit,
        public_url=args.public_url,
        # The token comes from $VBGRAPH_SERVE_TOKEN, read by the server: never a flag,
        # which other users of the machine could read in the process list.
        auth_token=None,
    )
    freeze_startup_objects()
    return run_on_loop(
        new_event_loop(), _serve(plan, config, args.worker_id, otel), debug=args.debug or None
    )


async def _serve(plan: Plan, config: object, worker_id: int, otel: ObservabilityConfig) -> int:
    from ..serve.app import Server, served_transports
    from ..serve.config import ServeConfig

    assert isinstance(config, ServeConfig)
    telemetry = None
    if otel.enabled:  # only now is OpenTelemetry imported
        from ..observability import TraceContextFilter
        from ..observability.telemetry import Telemetry

        telemetry = Telemetry.from_config(otel, pull=True)
        if telemetry.tracer is not None:
            TraceContextFilter.install(
                fmt="%(asctime)s %(name)s %(message)s trace_id=%(trace_id)s span_id=%(span_id)s"
            )
    server = Server(plan, config, telemetry=telemetry)
    if worker_id:
        server.metric_labels = {"worker": str(worker_id)}
    await server.start()
    who = f" worker {worker_id}" if worker_id else ""
    transports = ", ".join(served_transports(plan))
    print(f"vbgraph serve{who}: {plan.name} on {server.url} ({transports})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print(f"vbgraph serve{who}: draining ({server.calls.active} live calls)", flush=True)
    await server.stop()
    if telemetry is not None:
        telemetry.shutdown()
    print(f"vbgraph serve{who}: stopped", flush=True)
    return 0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _worker_argv(argv: Sequence[str], port: int, worker_id: int) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--port", "--worker-id"):
            skip = True
            continue
        if arg.startswith(("--port=", "--worker-id=")):
            continue
        out.append(arg)
    return [
        sys.executable,
        "-m",
        "vbgraph",
        *out,
        "--port",
        str(port),
        "--worker-id",
        str(worker_id),
    ]


def _supervise(args: argparse.Namespace, argv: Sequence[str]) -> int:
    port = args.port or _free_port(args.host)
    print(f"vbgraph serve: {args.workers} workers on http://{args.host}:{port}", flush=True)
    workers: dict[int, subprocess.Popen[bytes]] = {}
    for wid in range(1, args.workers + 1):
        workers[wid] = subprocess.Popen(_worker_argv(argv, port, wid))
    stopping = False
    restarts: list[float] = []

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    exit_code = 0
    while workers:
        for wid, proc in list(workers.items()):
            code = proc.poll()
            if code is None:
                continue
            del workers[wid]
            if stopping:
                exit_code = exit_code or code
                continue
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60] + [now]
            if len(restarts) > MAX_RESTARTS:
                log.error("worker %d exited %d; too many restarts, stopping", wid, code)
                forward(signal.SIGTERM, None)
                exit_code = 1
                continue
            log.warning("worker %d exited %d; restarting it", wid, code)
            workers[wid] = subprocess.Popen(_worker_argv(argv, port, wid))
        time.sleep(0.2)  # supervisor poll; workers do the serving
    return exit_code
