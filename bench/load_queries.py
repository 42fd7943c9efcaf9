"""Load benchmark section 1: small queries, closed-loop throughput and open-loop latency
(for `bench/load_bench.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load_setup import Bench, Row, ms, percentile

# -- 1. small queries ----------------------------------------------------------------------


class RawHttp:
    """One keep-alive HTTP/1.1 connection that only POSTs: the load generator's client.

    httpx spends 1-3 ms of CPU per request of its own; on two shared cores that would
    measure the client rather than the server (`--http-client httpx` shows it).
    """

    def __init__(self, host: str, port: int, *, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"authorization: Bearer {self.token}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"response without content-length: {head!r}")
        return status, await self._reader.readexactly(length)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its live children (`serve --workers N` runs the API
    in N child processes)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


Send = Callable[[], Awaitable[tuple[int, bytes]]]


@dataclass
class LoadResult:
    qps: float
    latencies: list[float]
    """Seconds; from the scheduled send time in an open loop (waiting included)."""
    failures: int
    cpu_per_query: float
    """Server CPU seconds per query."""
    client_cpu_per_query: float = 0.0
    """The bench's own CPU seconds per query (it shares the cores with the server)."""


def http_senders(bench: Bench, payload: bytes, n: int) -> tuple[list[Send], list[Callable[[], Awaitable[None]]]]:
    """`n` clients of one keep-alive connection each: (send functions, closers)."""
    senders: list[Send] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    for _ in range(n):
        if bench.args.http_client == "httpx":
            client = bench.client(1)

            async def send(client: httpx.AsyncClient = client) -> tuple[int, bytes]:
                response = await client.post(
                    "/graphql", content=payload, headers={"content-type": "application/json"}
                )
                return response.status_code, response.content

            senders.append(send)
            closers.append(client.aclose)
        else:
            raw = RawHttp("127.0.0.1", bench.server.port, token=bench.token)
            senders.append(lambda raw=raw: raw.post("/graphql", payload))  # type: ignore[misc]
            closers.append(raw.aclose)
    return senders, closers


async def query_load(
    bench: Bench, payload: bytes, *, total: int, clients: int, rate: float | None = None
) -> LoadResult:
    """`total` requests from `clients` connections. Closed loop (rate None): each client
    sends its next request as soon as the last one is answered. Open loop: requests are
    due at `rate` per second whatever the answers do, and each waits for a free
    connection; its latency runs from when it was due (no coordinated omission)."""
    senders, closers = http_senders(bench, payload, clients)
    latencies: list[float] = []
    failures = 0

    async def timed(send: Send, due: float) -> None:
        nonlocal failures
        status, body = await send()
        latencies.append(time.perf_counter() - due)
        if status != 200 or b'"errors"' in body:
            failures += 1

    async def loop(send: Send, n: int) -> None:
        for _ in range(n):
            await timed(send, time.perf_counter())

    try:
        await asyncio.gather(*(loop(send, 5) for send in senders))  # connect, warm up
        latencies.clear()
        failures = 0
        assert bench.server.proc is not None
        cpu0 = cpu_seconds(bench.server.proc.pid)
        own0 = time.process_time()
        t0 = time.perf_counter()
        if rate is None:
            counts = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
            await asyncio.gather(*(loop(send, n) for send, n in zip(senders, counts, strict=True)))
        else:
            free: asyncio.Queue[Send] = asyncio.Queue()
            for send in senders:
                free.put_nowait(send)

            async def one(due: float) -> None:
                send = await free.get()
                try:
                    await timed(send, due)
                finally:
                    free.put_nowait(send)

            tasks = []
            for i in range(total):
                due = t0 + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(one(due)))
            _, late = await asyncio.wait(tasks, timeout=30)  # bounded, even when overloaded
            for task in late:  # counted as failures, their latency so far as a floor
                task.cancel()
                failures += 1
            latencies += [time.perf_counter() - t0 - i / rate for i in range(len(late))]
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(bench.server.proc.pid) - cpu0
        own = time.process_time() - own0
    finally:
        await asyncio.gather(*(close() for close in closers), return_exceptions=True)
    return LoadResult(total / wall, latencies, failures, cpu / total, own / total)


async def bench_queries(bench: Bench, run_id: str) -> None:
    args = bench.args
    cases = [
        ("{ run(id) { status } }", "query($id: ID!) { run(id: $id) { status } }", {"id": run_id}),
        ("{ strategies { name } }", "{ strategies { name } }", {}),
    ]
    for label, query, variables in cases:
        payload = json.dumps({"query": query, "variables": variables}).encode()
        closed = await query_load(bench, payload, total=args.queries, clients=args.concurrency)
        note = (f"closed loop: {args.queries} requests from {args.concurrency} "
                f"{args.http_client} clients, p50 {ms(percentile(closed.latencies, 50))}, "
                f"p99 {ms(percentile(closed.latencies, 99))}; "
                f"server CPU {closed.cpu_per_query * 1e6:.0f} us/query, "
                f"bench CPU {closed.client_cpu_per_query * 1e6:.0f} us/query")
        if closed.failures:
            note += f", {closed.failures} FAILED"
        bench.rows.append(Row(f"{label}: max throughput", f"{closed.qps:.0f} q/s", ">= 500 q/s",
                              closed.qps >= 500 and not closed.failures, note))
        n = int(args.rate * args.open_seconds)
        opened = await query_load(bench, payload, total=n, clients=64, rate=args.rate)
        p50, p99 = percentile(opened.latencies, 50), percentile(opened.latencies, 99)
        note = (f"open loop: {n} requests due at {args.rate:g}/s over 64 connections, "
                f"answered at {opened.qps:.0f}/s; server CPU {opened.cpu_per_query * 1e6:.0f} "
                f"us/query, bench CPU {opened.client_cpu_per_query * 1e6:.0f} us/query")
        if opened.failures:
            note += f", {opened.failures} FAILED"
        ok = p99 < 0.050 and opened.qps >= 0.95 * args.rate and not opened.failures
        bench.rows.append(Row(f"{label}: p50 / p99 at {args.rate:g} q/s",
                              f"{ms(p50)} / {ms(p99)}", "p99 < 50 ms", ok, note))
