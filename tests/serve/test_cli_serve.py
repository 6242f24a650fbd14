"""`vbgraph serve` as a real process: graceful drain on SIGTERM, and --workers sharing a port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import websockets

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "graphs" / "echo_server.yaml"
START = {"type": "start", "format": {"encoding": "pcm_s16le", "sample_rate": 16000}}
CHUNK = b"\x10\x00" * 320  # 20 ms of 16 kHz audio


@contextmanager
def serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start `vbgraph serve`; yield the process and its port (read from its first line)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VBGRAPH_SERVE_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbgraph", "serve", str(ECHO), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"no URL in {line!r}"
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


async def wait_health(port: int, status: int) -> dict[str, object]:
    """Poll /health until it answers ``status`` (bounded: 200 tries)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/health") as resp:
                    if resp.status == status:
                        body: dict[str, object] = await resp.json()
                        return body
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"/health never answered {status}")


async def start_call(port: int) -> websockets.ClientConnection:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
    await ws.send(json.dumps(START))
    while True:
        msg = await ws.recv()
        if isinstance(msg, str) and json.loads(msg)["type"] == "started":
            return ws


def test_sigterm_refuses_new_calls_lets_the_live_one_finish_and_exits_0() -> None:
    """Drain: /health turns 503, a new caller is refused (1013), the live call ends cleanly."""
    with serve("--drain-timeout", "30") as (proc, port):

        async def main() -> tuple[int | None, str, int | None]:
            await wait_health(port, 200)
            live = await start_call(port)
            await live.send(CHUNK * 5)
            proc.send_signal(signal.SIGTERM)
            health = await wait_health(port, 503)
            assert health["draining"] is True
            newcomer = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
            refused: dict[str, str] = {}
            with contextlib.suppress(websockets.ConnectionClosed):
                async for msg in newcomer:  # refused on connecting, before any start
                    refused = json.loads(msg)
            # The live call is still served: its audio comes back, then it ends normally.
            await live.send(json.dumps({"type": "end"}))
            last = None
            async for msg in live:
                if isinstance(msg, str):
                    last = json.loads(msg)
            return newcomer.close_code, refused["code"], live.close_code if last else None

        refused_code, refused_reason, live_code = asyncio.run(main())
        assert refused_code == 1013 and refused_reason == "server_draining"
        assert live_code == 1000
        assert proc.wait(timeout=30) == 0


def test_two_workers_share_the_port_and_both_drain_on_sigterm() -> None:
    """--workers 2: calls are spread over two processes; SIGTERM stops both, exit 0."""
    with serve("--workers", "2") as (proc, port):

        async def main() -> set[str]:
            workers: set[str] = set()
            async with aiohttp.ClientSession() as http:
                for _ in range(400):
                    # Separate connections: the kernel picks a worker for each.
                    with contextlib.suppress(aiohttp.ClientConnectionError):  # not up yet
                        async with http.get(
                            f"http://127.0.0.1:{port}/metrics", headers={"Connection": "close"}
                        ) as resp:
                            text = await resp.text()
                            workers.update(re.findall(r'worker="(\d+)"', text))
                    if len(workers) == 2:
                        break
                    await asyncio.sleep(0.02)
            calls = [await start_call(port) for _ in range(6)]
            for ws in calls:
                await ws.send(CHUNK)
                while not isinstance(await ws.recv(), bytes):  # events may come first
                    pass
                await ws.close()
            return workers

        assert asyncio.run(main()) == {"1", "2"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
