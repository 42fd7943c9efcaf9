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
Sections live in `load_queries.py` (1), this file (2) and `load_runs.py` (3, 4); the
deployment and helpers in `load_setup.py`. The exit status is 1 when a target is missed. Everything shares the machine's cores with
the bench itself, so run it on an otherwise idle machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load_queries import bench_queries, cpu_seconds
from bench.load_runs import bench_first_event, bench_throughput
from bench.load_setup import (
    PROGRESS,
    Bench,
    Row,
    gql,
    now_ms,
    percentile,
    pick_redis_url,
    raise_fd_limit,
    register_dataset,
    scratch_database,
    submit,
)
from tests.e2e.live import Server, TransportWS

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
