"""Load test of ``vbgraph serve``: concurrent WebSocket calls streaming real-time audio.

::

    python benchmarks/bench_serve.py                           # 100..600 calls, 1 worker
    python benchmarks/bench_serve.py --sessions 300 --workers 2 --duration 20

For each load level it starts ``vbgraph serve graphs/echo_server.yaml`` (gain set
to 0 dB, so the graph hands every sample through unchanged) in its own process,
then a load generator in this process opens N WebSocket calls (aiohttp client,
uvloop) that each send one 20 ms frame of 16 kHz PCM every 20 ms on an
absolute schedule. Every frame carries its sequence number in its first two
samples; the server's ``transport.out`` paces the echo back in 20 ms packets
with the same alignment, so the generator matches each packet to the frame it
came from. It reports, per level:

* frame latency in → out (send of frame k to arrival of its echo), p50/p99;
* frames sent, echoed, missing (lost anywhere), and the server's own counted
  drops (``/metrics``: lost frames on edges, transport buffer drops);
* the server's CPU (user+sys seconds per wall second) and RSS.

The *knee* is the highest level with p99 < 20 ms and nothing missing. The
generator shares the machine with the server: on a 2-core machine it takes
most of one core at high levels, which both caps what ``--workers 2`` can show
and adds its own scheduling delay to the measured latency (a conservative
bias). Quote medians of repeated runs and the machine with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GRAPH = ROOT / "graphs" / "echo_server.yaml"
RATE = 16000
FRAME = 320  # samples in 20 ms
START = json.dumps(
    {"type": "start", "format": {"encoding": "pcm_s16le", "sample_rate": RATE}, "events": []}
)
_TONE = (np.sin(np.arange(FRAME) * 2 * np.pi * 440 / RATE) * 3000).astype("<i2")


def frame(seq: int) -> bytes:
    """20 ms of a tone whose first two samples hold ``seq``."""
    samples = _TONE.copy()
    samples[0] = seq >> 15
    samples[1] = seq & 0x7FFF
    return samples.tobytes()


def seq_of(packet: bytes) -> int:
    hi, lo = struct.unpack_from("<hh", packet)
    return (hi << 15) | lo


@dataclass
class Call:
    sent: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    received: int = 0


async def run_call(
    http: aiohttp.ClientSession,
    url: str,
    call: Call,
    t0: float,
    duration: float,
    ready: asyncio.Event,
) -> None:
    async with http.ws_connect(url, autoping=True, max_msg_size=0) as ws:
        await ws.send_str(START)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "started":
                break
        await ready.wait()
        loop = asyncio.get_running_loop()
        # The schedule starts when this call is up: a late start must not become a burst
        # (a burst waits in the playout buffer and would be measured as latency).
        t0 = max(t0, loop.time())
        stop_at = t0 + duration

        async def receive() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY and len(msg.data) >= 4:
                    sent = call.sent.pop(seq_of(msg.data), None)
                    if sent is not None:
                        call.latencies.append(time.perf_counter() - sent)
                        call.received += 1

        receiver = asyncio.create_task(receive())
        seq = 0
        while True:
            due = t0 + seq * 0.02
            if due >= stop_at:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # perf_counter, not loop.time(): uvloop's clock has 1 ms resolution.
            call.sent[seq] = time.perf_counter()
            await ws.send_bytes(frame(seq))
            seq += 1
        await asyncio.sleep(0.3)  # the last echoes are 20-40 ms behind
        await ws.send_str(json.dumps({"type": "end"}))
        try:
            await asyncio.wait_for(receiver, 5)
        except TimeoutError:
            receiver.cancel()


def server_cpu_rss(pid: int) -> tuple[float, int]:
    """CPU seconds (user+sys) of ``pid`` and its children so far, and their RSS in bytes."""
    total_cpu, total_rss = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total_cpu += (int(fields[11]) + int(fields[12])) / tick
            total_rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (FileNotFoundError, IndexError):
            pass
    return total_cpu, total_rss


async def scrape(port: int) -> dict[str, float]:
    """Sum of each metric over the workers that answer (a few scrapes)."""
    found: dict[tuple[str, str], float] = {}
    async with aiohttp.ClientSession() as http:
        for _ in range(8):
            async with http.get(
                f"http://127.0.0.1:{port}/metrics", headers={"Connection": "close"}
            ) as resp:
                text = await resp.text()
            worker = re.search(r'worker="(\d+)"', text)
            key = worker.group(1) if worker else "0"
            for name in ("vbgraph_frames_lost_total", "vbgraph_transport_dropped_total"):
                values = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
                found[(name, key)] = sum(float(v) for v in values)
    out: dict[str, float] = {}
    for (name, _), value in found.items():
        out[name] = out.get(name, 0.0) + value
    return out


def start_server(workers: int, max_sessions: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "vbgraph", "serve", str(GRAPH), "--port", "0",
            "--workers", str(workers), "--max-sessions", str(max_sessions),
            "--rate-limit", "0", "--set", "gain.db=0",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    match = re.search(r":(\d+)", proc.stdout.readline().rsplit("http://", 1)[-1])
    assert match, "server did not print its URL"
    return proc, int(match.group(1))


async def wait_ready(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            try:
                async with http.get(f"http://127.0.0.1:{port}/health/live") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server never became ready")


async def level(sessions: int, workers: int, duration: float) -> dict[str, float]:
    proc, port = start_server(workers, max_sessions=sessions + 10)
    try:
        await wait_ready(port)
        url = f"ws://127.0.0.1:{port}/ws"
        calls = [Call() for _ in range(sessions)]
        ready = asyncio.Event()
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as http:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            tasks = [
                # Start offsets spread over one 20 ms frame, as real callers would be.
                asyncio.create_task(run_call(http, url, c, t0 + (i % 50) * 0.0004, duration, ready))
                for i, c in enumerate(calls)
            ]
            ready.set()
            cpu0, _ = server_cpu_rss(proc.pid)
            me0 = os.times()
            w0 = time.monotonic()
            await asyncio.gather(*tasks)
            cpu1, rss = server_cpu_rss(proc.pid)
            me1 = os.times()
            wall = time.monotonic() - w0
        counted = await scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
    lat = sorted(x for c in calls for x in c.latencies)
    sent = sum(c.received + len(c.sent) for c in calls)
    received = sum(c.received for c in calls)
    return {
        "sessions": sessions,
        "workers": workers,
        "p50_ms": statistics.median(lat) * 1e3 if lat else float("nan"),
        "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1e3 if lat else float("nan"),
        "sent": sent,
        "missing": sent - received,
        "server_lost_frames": counted.get("vbgraph_frames_lost_total", 0.0),
        "server_transport_drops": counted.get("vbgraph_transport_dropped_total", 0.0),
        "server_cpu": (cpu1 - cpu0) / wall,
        "server_rss_mb": rss / 2**20,
        "client_cpu": (me1.user + me1.system - me0.user - me0.system) / wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default="100,200,300,400,600", help="load levels")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of audio per call")
    ap.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = ap.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or ''}")
    print(
        "| calls | workers | p50 ms | p99 ms | sent | missing | server lost | "
        "server drops | server CPU | server RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    knee = 0
    for n in (int(x) for x in args.sessions.split(",")):
        r = asyncio.run(level(n, args.workers, args.duration))
        if args.json:
            print(json.dumps(r))
        else:
            cells = [
                f"{n}",
                f"{args.workers}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['sent']:.0f}",
                f"{r['missing']:.0f}",
                f"{r['server_lost_frames']:.0f}",
                f"{r['server_transport_drops']:.0f}",
                f"{r['server_cpu']:.2f}",
                f"{r['server_rss_mb']:.0f}",
                f"{r['client_cpu']:.2f}",
            ]
            print("| " + " | ".join(cells) + " |", flush=True)
        if r["p99_ms"] < 20 and r["missing"] == 0:
            knee = n
    print(f"\nknee (p99 < 20 ms, nothing missing): {knee} calls")


if __name__ == "__main__":
    main()
