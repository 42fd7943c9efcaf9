"""Where a tiled EMA grid spends its CPU, per numba kernel, with Linux `perf`.

Run: `NUMBA_CACHE_DIR=$(mktemp -d) .venv/bin/python bench/perf_sweep.py [N_SIDE] [STEP] [BLOCKS]`
(an N_SIDE x N_SIDE ema_crossover grid on 1M bars, every STEP-th point, with BLOCKS PBO
blocks as optimizations take them; default 32 1 0).
After a warm-up it attaches `perf record` to itself, runs the sweep, then writes
/tmp/perf-PID.map with the address of every function numba compiled in this process, so
`perf report -i /tmp/perf_sweep.data --no-children --sort sym` names the kernels. The
fresh cache directory matters: functions loaded from numba's cache have no module in
memory to list. Shares within one profile are the robust numbers on a noisy machine.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.optim_bench import grid_space, minute_bars
from engine.sweep import sweep_ema_crossover


def write_perf_map() -> int:
    """/tmp/perf-PID.map for every finalized numba code library alive; returns the count."""
    from numba.core.codegen import JITCodeLibrary

    gc.unfreeze()  # objects frozen out of the collector are invisible to get_objects
    starts: dict[int, str] = {}
    for obj in gc.get_objects():
        mod = getattr(obj, "_final_module", None) if isinstance(obj, JITCodeLibrary) else None
        if mod is None:
            continue
        for f in mod.functions:
            if not f.is_declaration:
                addr = obj.get_pointer_to_function(f.name)
                if addr:
                    starts[addr] = f.name[:200]
    addrs = sorted(starts)
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for i, a in enumerate(addrs):
            gap = addrs[i + 1] - a if i + 1 < len(addrs) else 4096
            fh.write(f"{a:x} {min(gap, 1 << 20):x} {starts[a]}\n")
    return len(addrs)


def main() -> None:
    n_side = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    step = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    big = minute_bars(1_000_000)
    pts = [p for c in grid_space(n_side).iter_grid() for p in c][::step]
    fast = np.array([p["fast"] for p in pts])
    slow = np.array([p["slow"] for p in pts])
    sweep_ema_crossover(minute_bars(5_000, 1), [5], [20])  # compile outside the profile
    rec = subprocess.Popen(["perf", "record", "-o", "/tmp/perf_sweep.data", "-p", str(os.getpid())])
    time.sleep(1)
    t0, c0 = time.perf_counter(), time.process_time()
    sweep_ema_crossover(big, fast, slow, False, blocks=blocks)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rec.send_signal(signal.SIGINT)
    rec.wait()
    print(f"{len(pts)} sets: {wall:.2f} s wall, {cpu:.2f} CPU-s; {write_perf_map()} functions mapped")
    print("perf report -i /tmp/perf_sweep.data --no-children --sort sym")


if __name__ == "__main__":
    main()
