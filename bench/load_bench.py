"""Load benchmark of the live service: queries, subscriber fan-out, arq runs, first event.

Run from the repository root: `.venv/bin/python bench/load_bench.py` (about 2 minutes).
It needs PostgreSQL and Redis (TEST_PG_DSN / TEST_REDIS_URL, defaults on 127.0.0.1) and
starts everything else itself, on loopback only, in the team deployment: a scratch
PostgreSQL database, a `backtester serve` process (uvicorn) and `backtester worker`
(arq) processes. All of them are stopped, and the database dropped, even on failure.

Every request carries an API token of a user the bench creates (per-token rate limits
lifted), as a team's clients do. `--api-workers N` starts `serve --workers N` (server CPU
is then summed over its processes); `--no-ws-compression` turns websocket deflate off.

1. small queries, `{ run(id) { status } }` and `{ strategies { name } }`: max throughput
   with `--concurrency` closed-loop clients (one keep-alive connection each), then p50/p99
   in an open loop at `--rate` requests per second (latency counted from when a request
   was due, so a server that falls behind shows it).
2. fan-out: `--subscribers` graphql-transport-ws connections follow `runProgress` of
   one slowed-down run (BT_TEST_FAULTS on its worker); delay = receipt time minus the
   event's `emittedAt` (stamped where the worker builds it), over every PROGRESS event.
3. throughput: `--runs` backtests of a 10k-bar dataset submitted at once through
   the API and run by `--workers` arq workers: runs per second, submit to last result.
4. first event: `--first-runs` runs one after another with a warm, idle worker: time from
   sending `submitBacktest` to the run's RUNNING event and to its first PROGRESS event.

Targets (issue 3, on a 2-core machine): >= 500 small queries/s with p99 < 50 ms;
500 subscribers with p99 delay < 500 ms; first progress event < 300 ms after submit.
The exit status is 1 when a target is missed. Everything shares the machine's cores with
the bench itself, so run it on an otherwise idle machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.live import Process, Server, TransportWS

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
N_BARS = 10_000
STRATEGY = "ema_crossover"

SUBMIT = "mutation($input: BacktestInput!) { submitBacktest(input: $input) { id status } }"
PROGRESS = """
subscription($id: ID!) { runProgress(id: $id) { seq type status progress emittedAt } }
"""
RUN_EVENTS = "subscription { runEvents { runId type status emittedAt } }"


def now_ms() -> float:
    return time.time() * 1000.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("pass" if self.ok else "FAIL")


@dataclass
class Bench:
    """The live deployment under test and the rows measured so far."""

    args: argparse.Namespace
    tmp: Path
    env: dict[str, str]
    server: Server
    dataset_id: int
    token: str
    """An API token (scope `run`) of the bench's user: every request carries it."""
    rows: list[Row] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    """Worker processes running now; `spent` holds the stopped ones (for their logs)."""
    spent: list[Process] = field(default_factory=list)

    def start_workers(self, n: int, *, faults: dict[str, Any] | None = None) -> list[Process]:
        env = dict(self.env)
        if faults:
            env["BT_TEST_FAULTS"] = json.dumps(faults)
        started = []
        for _ in range(n):
            k = len(self.workers)
            proc = Process(["worker"], env, self.tmp / f"worker-{k}.log")
            self.workers.append(proc)  # before start: stopped in `finally` whatever happens
            started.append(proc.start())
        return started

    def stop_workers(self) -> None:
        while self.workers:
            proc = self.workers.pop()
            self.spent.append(proc)
            proc.stop()

    def client(self, connections: int = 16) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            base_url=self.server.url, timeout=60, limits=limits,
            headers={"authorization": f"Bearer {self.token}"},
        )

    async def websocket(self, **kwargs: Any) -> TransportWS:
        """A graphql-transport-ws connection authenticated with the bench's token."""
        return await TransportWS.connect(
            self.server.ws_url, payload={"Authorization": f"Bearer {self.token}"},
            ping_interval=None, **kwargs,
        )


# -- setup ---------------------------------------------------------------------------------


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A new PostgreSQL database (plain `postgresql://` URL), dropped on the way out."""
    name = f"bt_bench_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pick_redis_url() -> str:
    """A Redis logical database with no keys: the queue's name is fixed, so a worker of
    another deployment on the same database would take the bench's jobs. Database 0 first
    (the tests pick 1-15 at random)."""
    import redis

    candidates = [0, *range(15, 0, -1)]
    for n in candidates:
        client = redis.Redis.from_url(f"{REDIS_BASE}/{n}", socket_connect_timeout=2)
        try:
            if client.dbsize() == 0:
                return f"{REDIS_BASE}/{n}"
        finally:
            client.close()
    return f"{REDIS_BASE}/{random.choice(candidates)}"


async def register_dataset(database_url: str, data_dir: Path) -> tuple[int, str]:
    """A 10k-bar synthetic 1-minute dataset owned by a new user, and that user's API token
    (what `backtester user add` and `backtester token create` make)."""
    from engine.synthetic import synthetic_intraday
    from store.auth import create_token, create_user
    from store.blobs import blob_store_for
    from store.datasets import save_dataset
    from store.db import Database

    bars = synthetic_intraday(days=N_BARS // 375 + 1, seed=11)
    bars = bars.slice(0, N_BARS)
    db = Database(database_url)
    try:
        user = await create_user(db, "bench")
        row = await save_dataset(
            db, blob_store_for(db, data_dir), bars, name="load bench 10k", symbol="BENCH",
            owner_id=user.id,
        )
        issued = await create_token(db, "bench", ["run"], note="bench/load_bench.py")
        return int(row.id), issued.secret
    finally:
        await db.dispose()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's (and its children's) open-file soft limit; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return int(soft)


# -- helpers -------------------------------------------------------------------------------


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


async def submit(client: httpx.AsyncClient, dataset_id: int, **params: Any) -> str:
    data = await gql(client, SUBMIT, {"input": {
        "strategy": STRATEGY, "datasetId": str(dataset_id), "params": params or None,
    }})
    return str(data["submitBacktest"]["id"])


async def wait_terminal(client: httpx.AsyncClient, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll `run(id)` until every run is terminal; their statuses."""
    pending, done = set(ids), {}
    async with asyncio.timeout(timeout):
        while pending:
            for run_id in list(pending):
                status = (await gql(client, "query($id: ID!) { run(id: $id) { status } }",
                                    {"id": run_id}))["run"]["status"]
                if status in {"SUCCEEDED", "FAILED", "CANCELLED"}:
                    done[run_id] = status
                    pending.discard(run_id)
            if pending:
                await asyncio.sleep(0.1)
    return done


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


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


# -- 2. subscriber fan-out -----------------------------------------------------------------


async def bench_fanout(bench: Bench) -> None:
    args = bench.args
    n = args.subscribers
    async with bench.client() as client:
        run_id = await submit(client, bench.dataset_id)  # no worker yet: it waits, QUEUED
    gate = asyncio.Semaphore(64)

    async def connect() -> TransportWS:
        async with gate:
            return await bench.websocket(open_timeout=60)

    t0 = time.perf_counter()
    conns = await asyncio.gather(*(connect() for _ in range(n)))
    connect_s = time.perf_counter() - t0
    snapshots = 0
    all_snapshots = asyncio.Event()
    delays: list[float] = []
    counts: list[int] = []
    last_seqs: list[int] = []
    ends: list[str] = []
    errors: list[str] = []
    assert bench.server.proc is not None
    pid = bench.server.proc.pid
    window: dict[str, float] = {}  # from the first PROGRESS event received to the end

    async def follow(conn: TransportWS) -> None:
        nonlocal snapshots
        seen, last_seq = 0, 0
        async for payload in conn.subscribe(PROGRESS, {"id": run_id}):
            received = now_ms()
            if payload.get("errors"):
                errors.append(str(payload["errors"][0].get("message")))
                if not errors[1:]:
                    print(f"subscription error: {payload['errors']}", file=sys.stderr)
                break
            event = payload["data"]["runProgress"]
            if event["type"] == "SNAPSHOT":
                snapshots += 1
                if snapshots == n:
                    all_snapshots.set()
            elif event["type"] == "PROGRESS":
                if not window:
                    window.update(t0=time.perf_counter(), server=cpu_seconds(pid),
                                  bench=time.process_time())
                seen += 1
                last_seq = max(last_seq, int(event["seq"]))
                delays.append(received - float(event["emittedAt"]))
            elif event["type"] == "TERMINAL":
                ends.append(event["status"])
        counts.append(seen)
        last_seqs.append(last_seq)

    followers = [asyncio.create_task(follow(c)) for c in conns]
    try:
        async with asyncio.timeout(120):
            await all_snapshots.wait()
        subscribe_s = time.perf_counter() - t0 - connect_s
        faults = {"chunk_bars": args.fanout_chunk, "chunk_delay_s": args.fanout_delay}
        bench.start_workers(1, faults=faults)  # only now: every subscriber saw the snapshot
        async with asyncio.timeout(180):
            await asyncio.gather(*followers)
        stream_s = time.perf_counter() - window["t0"]
        server_cpu = cpu_seconds(pid) - window["server"]
        client_cpu = time.process_time() - window["bench"]
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        bench.stop_workers()
    # A follower that falls behind gets progress merged (`workers.bus.coalesce`): fewer
    # events, each stamped with its oldest news, but every follower ends at the last one.
    expected = max(counts) * n if counts else 0
    complete = bool(last_seqs) and min(last_seqs) == max(last_seqs) and len(last_seqs) == n
    note = (f"{n} websockets, {len(delays)}/{expected} events delivered "
            f"({'every follower reached the last progress event' if complete else 'SOME MISSED THE LAST'}"
            f"; fewer = merged for followers behind), "
            f"connect {connect_s:.1f} s, subscribe {subscribe_s:.1f} s, "
            f"{ends.count('SUCCEEDED')}/{n} saw SUCCEEDED; streaming took {stream_s:.1f} s, "
            f"server CPU {server_cpu:.1f} s ({server_cpu / max(len(delays), 1) * 1e6:.0f} us per "
            f"delivered event), bench CPU {client_cpu:.1f} s"
            + (f"; {len(errors)} subscriptions ended with an error" if errors else ""))
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    ok = p99 < 500 and complete and ends.count("SUCCEEDED") == n and not errors
    bench.rows.append(Row(f"{n} runProgress subscribers: p50 / p99 delay",
                          f"{p50:.0f} / {p99:.0f} ms", "p99 < 500 ms", ok, note))


# -- 3. runs per second through arq --------------------------------------------------------


class Terminals:
    """Follows `runEvents` and notes when each run's terminal event arrives."""

    def __init__(self, conn: TransportWS) -> None:
        self.conn = conn
        self.seen: dict[str, tuple[str, float]] = {}
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        async for payload in self.conn.subscribe(RUN_EVENTS):
            event = (payload.get("data") or {}).get("runEvents") or {}
            if event.get("type") == "TERMINAL":
                self.seen.setdefault(event["runId"], (event["status"], time.perf_counter()))
                self._changed.set()

    async def wait(self, ids: list[str], timeout: float) -> None:
        """Until every run in `ids` was seen finishing (TimeoutError after `timeout`)."""
        async with asyncio.timeout(timeout):
            while not all(i in self.seen for i in ids):
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self.conn.close()


async def bench_throughput(bench: Bench) -> None:
    args = bench.args
    bench.start_workers(args.workers)
    terminals = Terminals(await bench.websocket())
    try:
        async with bench.client(16) as client:
            # warm-up: every worker process loads numba kernels and the dataset
            warm = [await submit(client, bench.dataset_id, fast=5 + k)
                    for k in range(2 * args.workers)]
            await terminals.wait(warm, timeout=120)
            gate = asyncio.Semaphore(16)

            async def one(k: int) -> str:
                async with gate:
                    return await submit(client, bench.dataset_id, fast=5 + k % 40, slow=60 + k % 50)

            t0 = time.perf_counter()
            ids = list(await asyncio.gather(*(one(k) for k in range(args.runs))))
            submitted = time.perf_counter() - t0
            try:
                await terminals.wait(ids, timeout=300)
            except TimeoutError:  # a lost bus message: the database has the answer
                missing = [i for i in ids if i not in terminals.seen]
                for run_id, status in (await wait_terminal(client, missing, 60)).items():
                    terminals.seen[run_id] = (status, time.perf_counter())
    finally:
        await terminals.close()
    wall = max(terminals.seen[i][1] for i in ids) - t0
    ok = sum(1 for i in ids if terminals.seen[i][0] == "SUCCEEDED")
    note = (f"{args.runs} runs x {N_BARS:,} bars, {args.workers} workers x 2 jobs, "
            f"all submitted in {submitted:.1f} s, {ok} SUCCEEDED, last one {wall:.1f} s after "
            "the first submit")
    bench.rows.append(Row("end-to-end runs through arq", f"{args.runs / wall:.1f} runs/s",
                          "", None if ok == args.runs else False, note))


# -- 4. submit to first event --------------------------------------------------------------


async def bench_first_event(bench: Bench) -> None:
    args = bench.args
    to_running: list[float] = []
    to_progress: list[float] = []
    emitted: list[float] = []
    missed = 0
    async with bench.client(4) as client:
        status_conn = await bench.websocket()
        conn = await bench.websocket()
        running_at: dict[str, float] = {}
        heard = asyncio.Condition()

        async def watch_status() -> None:
            async for payload in status_conn.subscribe(RUN_EVENTS):
                event = payload["data"]["runEvents"]
                if event["status"] == "RUNNING" and event["type"] == "STATUS":
                    running_at.setdefault(event["runId"], float(event["emittedAt"]))
                    async with heard:
                        heard.notify_all()

        watcher = asyncio.create_task(watch_status())
        try:
            await asyncio.sleep(0.5)
            for k in range(args.first_runs):
                await asyncio.sleep(0.3 + random.random() * 0.2)  # idle worker, random phase
                t0 = now_ms()
                run_id = await submit(client, bench.dataset_id, fast=3 + k)
                first: float | None = None
                async with asyncio.timeout(60):
                    async for payload in conn.subscribe(PROGRESS, {"id": run_id}):
                        event = payload["data"]["runProgress"]
                        if event["type"] == "SNAPSHOT" and event["progress"] > 0:
                            missed += 1  # progressed before we subscribed (not seen)
                        if event["type"] == "PROGRESS" and first is None:
                            first = now_ms()  # received by this client
                            emitted.append(float(event["emittedAt"]) - t0)
                if first is not None:
                    to_progress.append(first - t0)
                async with asyncio.timeout(10), heard:
                    await heard.wait_for(lambda run_id=run_id: run_id in running_at)
                to_running.append(running_at[run_id] - t0)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            await status_conn.close()
            await conn.close()
    n = args.first_runs
    bench.rows.append(Row(
        "submit -> RUNNING event: median / p95", fmt_pair(to_running), "", None,
        f"{len(to_running)} runs, one at a time, warm idle workers",
    ))
    p95 = percentile(to_progress, 95) if to_progress else math.inf
    bench.rows.append(Row(
        "submit -> first PROGRESS event: median / p95", fmt_pair(to_progress), "< 300 ms",
        p95 < 300 and missed == 0,
        f"{len(to_progress)}/{n} runs, received by the client; published by the worker "
        f"{fmt_pair(emitted)} after submit; {missed} missed",
    ))


def fmt_pair(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.0f} / {percentile(values, 95):.0f} ms"


# -- main ----------------------------------------------------------------------------------


def print_table(rows: list[Row], header: str) -> None:
    cols = ("metric", "value", "target", "result")
    body = [(r.metric, r.value, r.target, r.verdict) for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    line = "  ".join("-" * w for w in widths)
    print(header)
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print(line)
    for b in body:
        print("  ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)))
    print(line)
    for r in rows:
        if r.note:
            print(f"  {r.metric}: {r.note}")


async def section(bench: Bench, name: str, fn: Callable[[], Awaitable[None]]) -> None:
    print(f"[load_bench] {name} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        await fn()
    except Exception as exc:  # report it and carry on with the other sections
        traceback.print_exc()
        bench.rows.append(Row(name, "error", "", False, f"{type(exc).__name__}: {exc}"))
    print(f"[load_bench] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> tuple[list[Row], str]:
    from store.db import run_migrations

    fd_limit = raise_fd_limit(4 * args.subscribers + 1024)
    with tempfile.TemporaryDirectory(prefix="bt-load-bench-") as tmp_name:
        tmp = Path(tmp_name)
        async with scratch_database() as database_url:
            redis_url = pick_redis_url()
            env = {
                "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                "BT_DATA_DIR": str(tmp / "var"), "BT_LOG_LEVEL": args.log_level,
                "BT_ENV": "production", "BT_LOAD_SAMPLES": "false",
                # one token drives the whole bench: lift its per-token budgets
                "BT_RATE_LIMIT_REQUESTS": "1000000000", "BT_RATE_LIMIT_RUNS": "1000000000",
                "BT_MAX_CONCURRENT_RUNS": "100000", "BT_QUEUE_SHARE": "1",
            }
            from app.settings import normalize_database_url

            await asyncio.to_thread(run_migrations, normalize_database_url(database_url))
            dataset_id, token = await register_dataset(
                normalize_database_url(database_url), tmp / "var"
            )
            server = Server(env, tmp / "server.log")
            server.args += ["--workers", str(args.api_workers),
                            "--ws-compression" if args.ws_compression else "--no-ws-compression"]
            bench = Bench(args, tmp, env, server, dataset_id, token)
            try:
                await asyncio.to_thread(server.start)
                async with bench.client() as client:
                    health = (await client.get("/health")).json()
                    probe = await submit(client, dataset_id)  # stays QUEUED: no worker yet
                header = (f"load bench: {health.get('mode')} mode (uvicorn x{args.api_workers} + "
                          f"PostgreSQL + Redis/arq, websocket deflate "
                          f"{'on' if args.ws_compression else 'off'}), "
                          f"API token auth (rate limits lifted), {os.cpu_count()} CPUs, loopback, "
                          f"log level {args.log_level}, fd limit {fd_limit}, load average "
                          f"before {os.getloadavg()[0]:.1f}")
                if "queries" in args.only:
                    await section(bench, "small queries", lambda: bench_queries(bench, probe))
                async with bench.client() as client:  # the probe run must not count below
                    await gql(client, "mutation($id: ID!) { cancelRun(id: $id) { id } }",
                              {"id": probe})
                if "fanout" in args.only:
                    await section(bench, "subscriber fan-out", lambda: bench_fanout(bench))
                if "throughput" in args.only:
                    await section(bench, "runs through arq", lambda: bench_throughput(bench))
                if "first" in args.only:
                    if not bench.workers:
                        bench.start_workers(args.workers)
                    await section(bench, "first event", lambda: bench_first_event(bench))
            finally:
                bench.stop_workers()
                server.stop()
            for proc, name in [(server, "server"), *((w, "worker") for w in bench.spent)]:
                if "Traceback" in proc.log():  # the log goes with the temporary folder
                    print(f"--- {proc.log_path.name} ---\n{proc.log()[-6000:]}", file=sys.stderr)
                    bench.rows.append(Row(f"{name} log", "traceback", "none", False,
                                          f"{proc.log_path.name}, printed above"))
        return bench.rows, header


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=3000, help="closed-loop requests per query")
    ap.add_argument("--concurrency", type=int, default=32,
                    help="closed-loop HTTP clients (max throughput)")
    ap.add_argument("--rate", type=float, default=500.0,
                    help="open-loop request rate for the latency target")
    ap.add_argument("--open-seconds", type=float, default=5.0, help="open-loop duration")
    ap.add_argument("--http-client", choices=["raw", "httpx"], default="raw",
                    help="load generator client (raw: a minimal keep-alive HTTP/1.1 client)")
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--fanout-chunk", type=int, default=100, help="bars per chunk of the slow run")
    ap.add_argument("--fanout-delay", type=float, default=0.04, help="seconds after each chunk")
    ap.add_argument("--runs", type=int, default=200, help="runs for the arq throughput")
    ap.add_argument("--workers", type=int, default=2, help="`backtester worker` processes")
    ap.add_argument("--api-workers", type=int, default=1,
                    help="API processes (`backtester serve --workers N`)")
    ap.add_argument("--ws-compression", action=argparse.BooleanOptionalAction, default=True,
                    help="websocket per-message deflate on the server (`serve --ws-compression`)")
    ap.add_argument("--first-runs", type=int, default=20)
    ap.add_argument("--log-level", default="warning", help="server and worker log level")
    ap.add_argument("--only", nargs="+", default=["queries", "fanout", "throughput", "first"],
                    choices=["queries", "fanout", "throughput", "first"])
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, header = asyncio.run(run(args))
    print_table(rows, header)
    print(f"  total bench time {time.perf_counter() - t0:.0f} s, load average after "
          f"{os.getloadavg()[0]:.1f}")
    if any(r.ok is False for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
