"""Load benchmark sections 3 and 4: runs per second through arq, and submit to first
event (for `bench/load_bench.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load_setup import (
    N_BARS,
    PROGRESS,
    RUN_EVENTS,
    Bench,
    Row,
    now_ms,
    percentile,
    submit,
    wait_terminal,
)
from tests.e2e.live import TransportWS

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
