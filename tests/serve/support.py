"""A test-only transport: one HTTP request is one call, so server features test without a wire."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from vbgraph.formats import AudioFormat
from vbgraph.serve.app import ServerContext
from vbgraph.serve.calls import CallRefused
from vbgraph.transports.link import CallLink, OutboundAudio

PCM = AudioFormat(16000)
ECHO = """
version: 1
name: echo
nodes:
  caller: {type: transport.in, transports: [websocket]}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out}
edges: [caller -> gain -> speaker]
"""


class RequestCallHandler:
    """``POST /call`` with raw PCM: runs a call and answers with the bot's audio.

    ``POST /hold`` runs a call that lasts until ``release`` is set (for drain tests).
    """

    name = "request-call"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held = asyncio.Event()
        """Set once a /hold call is running."""

    def add_routes(self, app: web.Application, server: ServerContext) -> None:
        async def call(request: web.Request) -> web.Response:
            try:
                admission = server.calls.admit()
            except CallRefused as exc:
                return web.json_response({"error": exc.reason}, status=503)
            link = CallLink("request", PCM, PCM, call_id=admission.call_id)
            link.push_audio(await request.read())
            link.end_input()
            out = bytearray()

            async def receive() -> None:
                while (item := await link.next_outbound()) is not None:
                    if isinstance(item, OutboundAudio):
                        out.extend(item.payload)

            receiver = asyncio.create_task(receive())
            await server.calls.run_call(admission, link)
            await receiver
            return web.Response(body=bytes(out))

        async def hold(request: web.Request) -> web.Response:
            try:
                admission = server.calls.admit()
            except CallRefused as exc:
                return web.json_response({"error": exc.reason}, status=503)
            link = CallLink("request", PCM, PCM, call_id=admission.call_id)
            self.held.set()

            async def end_when_released() -> None:
                await self.release.wait()
                link.end_input()

            ender = asyncio.create_task(end_when_released())
            result = await server.calls.run_call(admission, link)
            ender.cancel()
            return web.json_response({"state": result.state.value if result else None})

        app.router.add_post("/call", call)
        app.router.add_post("/hold", hold)


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A strict little parser of the text format: every line is a comment or a sample."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, f"{name} has no # TYPE"
        parsed = dict(LABEL.findall(labels or ""))
        out.setdefault(name, []).append((parsed, float(value)))
    return out
