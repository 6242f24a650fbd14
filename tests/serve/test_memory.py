"""Memory per idle session stays under 1 MB (allocation counting, not timing)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from vbgraph.formats import AudioFormat
from vbgraph.graph.load import load
from vbgraph.serve.calls import CallManager
from vbgraph.testing import VirtualClock
from vbgraph.transports.link import CallLink

from .support import ECHO

SESSIONS = 50


async def open_idle_calls(
    calls: CallManager, n: int
) -> tuple[list[CallLink], list[asyncio.Task[object]]]:
    """Start ``n`` calls that send nothing; return once every session has started."""
    links, tasks = [], []
    started = 0
    all_started = asyncio.Event()

    def on_session(session: object) -> None:
        nonlocal started
        started += 1
        if started == n:
            all_started.set()

    ulaw = AudioFormat(8000, 1, "mulaw")
    for i in range(n):
        link = CallLink("test", ulaw, ulaw, call_id=str(i))
        links.append(link)
        tasks.append(asyncio.create_task(calls.run_call(calls.admit(), link, on_session)))
    await all_started.wait()
    return links, tasks


def test_an_idle_call_costs_less_than_a_megabyte() -> None:
    """50 idle calls of the modelled agent graph (VAD, STT, turn, LLM, TTS, transports)."""
    plan = load("graphs/modelled_server.yaml").compile()
    warm = CallManager(plan, max_sessions=SESSIONS)

    async def main() -> int:
        # One call first so that imports, caches and the loop's own structures exist.
        links, tasks = await open_idle_calls(warm, 1)
        for link in links:
            link.end_input()
        await asyncio.gather(*tasks)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        calls = CallManager(plan, max_sessions=SESSIONS)
        links, tasks = await open_idle_calls(calls, SESSIONS)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        for link in links:
            link.end_input()
        await asyncio.gather(*tasks)
        return used // SESSIONS

    per_session = VirtualClock().run(main())
    assert per_session < 1024 * 1024, f"{per_session / 1024:.0f} KiB per idle session"


def test_the_echo_graph_is_lighter_still() -> None:
    """A transport-only call is a few tens of KiB (bounded buffers, no per-call models)."""
    from vbgraph.graph.load import loads

    plan = loads(ECHO).compile()

    async def main() -> int:
        calls = CallManager(plan, max_sessions=SESSIONS + 1)
        links, tasks = await open_idle_calls(calls, 1)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        more, more_tasks = await open_idle_calls(calls, SESSIONS)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        for link in links + more:
            link.end_input()
        await asyncio.gather(*tasks, *more_tasks)
        return used // SESSIONS

    assert VirtualClock().run(main()) < 256 * 1024
