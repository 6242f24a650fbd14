"""The ``vbgraph`` command.

Exit codes: 0 ok, 1 runtime failure (a node reported an error, the session did
not end normally), 2 invalid graph or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..clock import VirtualClock, run_on_loop
from ..errors import ConfigError, VbgraphError
from ..graph.load import load
from ..graph.plan import Plan
from ..graph.schema import graph_json_schema, node_summary
from ..observability.config import command_config
from ..registry import default_registry
from ..runner import freeze_startup_objects, new_event_loop
from ..runtime.session import Session, SessionObserver, SessionResult
from .bench import add_bench_parser, cmd_bench
from .render import node_markdown, plan_dot, plan_text, result_text
from .serve import OTEL_HELP, add_serve_parser, cmd_serve

__all__ = ["main"]

EXIT_OK, EXIT_RUNTIME, EXIT_INVALID = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vbgraph", description="Run and inspect real-time voice graphs."
    )
    p.add_argument("--version", action="version", version=f"vbgraph {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def graph_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("graph", help="graph file (YAML)")
        sp.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="NODE.PARAM=VALUE",
            help="override a node parameter (repeatable); VALUE is read as YAML",
        )

    run = sub.add_parser("run", help="run one session of a graph to its end")
    graph_arg(run)
    run.add_argument(
        "--input",
        metavar="PATH",
        help="set ${INPUT} in the graph (e.g. the caller's recording); relative to here",
    )
    run.add_argument(
        "--output",
        metavar="PATH",
        help="set ${OUTPUT} in the graph (where results go); relative to here",
    )
    run.add_argument(
        "--virtual-time",
        action="store_true",
        help="run on a virtual clock: real-time pacing takes no wall time",
    )
    run.add_argument("--events", action="store_true", help="print bus events as they happen")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="the run summary as text or JSON (json: the same as --json)",
    )
    run.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing on success; sets ${QUIET} to true in the graph",
    )
    run.add_argument("--debug", action="store_true", help="asyncio debug mode")
    run.add_argument("--otel", choices=("none", "console", "otlp"), help=OTEL_HELP)

    graph_arg(add_serve_parser(sub))
    graph_arg(add_bench_parser(sub))

    val = sub.add_parser("validate", help="check a graph file; exit 2 if it is invalid")
    graph_arg(val)

    ins = sub.add_parser("inspect", help="show the compiled graph: converters, formats, queues")
    graph_arg(ins)
    ins.add_argument("--dot", action="store_true", help="emit Graphviz DOT instead of text")

    nodes = sub.add_parser("nodes", help="list node types, or show one type's params")
    nodes.add_argument("type", nargs="?", help="a node type to describe")
    nodes.add_argument("--markdown", action="store_true", help="reference docs for all types")

    sub.add_parser("schema", help="print the JSON Schema of graph files")
    return p


def _plan(args: argparse.Namespace) -> Plan:
    env = dict(os.environ)
    for name in ("input", "output"):
        value = getattr(args, name, None)
        if value is not None:
            # Relative to where the command runs, not to the graph file.
            env[name.upper()] = os.path.abspath(value)
    if getattr(args, "quiet", False):
        env["QUIET"] = "true"  # graphs read ${QUIET:-false} (log.turns' progress lines)
    return load(args.graph, overrides=args.overrides, env=env).compile()


def _result_json(result: SessionResult, written: Sequence[str] = ()) -> str:
    data = {
        "session_id": result.session_id,
        "graph": result.graph,
        "state": result.state.value,
        "ok": result.ok,
        "duration_s": result.duration_ns / 1e9,
        "nodes": {
            k: {"type": v.type, "frames_in": v.frames_in, "errors": v.errors}
            for k, v in result.nodes.items()
        },
        "edges": {
            k: {
                "delivered": e.delivered,
                "drops": e.drops,
                "stale": e.stale,
                "flushed": e.flushed,
                "failed": e.failed,
                "peak": e.peak,
            }
            for k, e in result.edges.items()
        },
        "errors": [str(e) for e in result.errors],
        "abandoned": list(result.abandoned),
        "written": list(written),
    }
    return json.dumps(data, indent=2)


def _written(session: Session) -> list[str]:
    """The files the session's nodes wrote: each node's ``written_path``, if it has one."""
    paths = (getattr(node, "written_path", None) for node in session.nodes.values())
    return [str(path) for path in paths if path is not None]


async def _run_session(
    plan: Plan, print_events: bool, debug: bool, observer: SessionObserver | None = None
) -> tuple[SessionResult, list[str]]:
    session = Session(plan, debug=debug, observer=observer)
    if not print_events:
        result = await session.run()
        return result, _written(session)
    listener = session.events()

    async def show() -> None:
        async for ev in listener:
            print(f"event {ev.pts / 1e9:9.3f}s {ev.source or '-':<12} {ev!r}", flush=True)

    printer = asyncio.create_task(show())
    result = await session.run()
    await printer
    return result, _written(session)


def _cmd_run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    otel = command_config(args.otel, serve=False)
    telemetry = None
    if otel.enabled:  # only now is OpenTelemetry imported
        from ..observability.telemetry import Telemetry

        telemetry = Telemetry.from_config(otel)
    freeze_startup_objects()
    main = _run_session(plan, args.events, args.debug, telemetry)
    try:
        if args.virtual_time:
            result, written = VirtualClock().run(main, debug=args.debug or None)
        else:
            result, written = run_on_loop(new_event_loop(), main, debug=args.debug or None)
    finally:
        if telemetry is not None:
            telemetry.shutdown()  # flushes: the console exporter prints the metrics here
    if args.json or args.log_format == "json":
        print(_result_json(result, written))
    elif not (args.quiet and result.ok):
        print(result_text(result, written))
    return EXIT_OK if result.ok else EXIT_RUNTIME


def _cmd_nodes(args: argparse.Namespace) -> int:
    reg = default_registry()
    if args.markdown:
        print("# Node reference\n")
        print("Generated by `vbgraph nodes --markdown` from each node's `Params` model.\n")
        for name in reg.names():
            print(node_markdown(reg.get(name)))
        return EXIT_OK
    if args.type:
        print(node_markdown(reg.get(args.type)))
        return EXIT_OK
    width = max((len(n) for n in reg.names()), default=4)
    for name in reg.names():
        print(f"{name:<{width}}  {node_summary(reg.get(name))}")
    for name, err in reg.entry_point_errors.items():
        print(f"{name:<{width}}  (entry point failed to load: {err})")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vbgraph`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "serve":
            return cmd_serve(args, _plan(args), sys.argv[1:] if argv is None else argv)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "validate":
            plan = _plan(args)
            print(f"{args.graph}: ok ({len(plan.nodes)} nodes, {len(plan.edges)} edges)")
            return EXIT_OK
        if args.command == "inspect":
            plan = _plan(args)
            print(plan_dot(plan) if args.dot else plan_text(plan), end="" if args.dot else "\n")
            return EXIT_OK
        if args.command == "nodes":
            return _cmd_nodes(args)
        if args.command == "schema":
            print(json.dumps(graph_json_schema(), indent=2))
            return EXIT_OK
    except ConfigError as exc:
        print(f"vbgraph: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except VbgraphError as exc:
        print(f"vbgraph: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("vbgraph: interrupted", file=sys.stderr)
        return EXIT_RUNTIME
    return EXIT_INVALID


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
