"""PBO benchmark: `engine.optim.overfit.pbo_from_blocks` (compiled CSCV) against the former
numpy version (tests/engine/optim/pbo_numpy.py) on S = 16 blocks (12,870 combinations).

Run: `.venv/bin/python bench/pbo_bench.py` (`--quick`: N = 1,000 only; `--repeat R`: best of
R alternating rounds, the default 2). Prints one table: per N (trials) the numpy and the
kernel wall time, their ratio, the kernel's CPU time (all threads of this process; on a
shared machine wall time includes waiting for a core) and whether the two agree (same
pbo and logits). Compilation is warmed up first and not timed; the target is N = 10,000
well under 2 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.optim.overfit import pbo_from_blocks  # noqa: E402
from tests.engine.optim.pbo_numpy import pbo_from_blocks_numpy  # noqa: E402

S = 16


def blocks(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block statistics of n trials over 16 blocks of 250 bar returns (not timed)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0002, 0.01, (S * 250, n)) + rng.normal(0, 0.0002, n)
    parts = r.reshape(S, 250, n)
    return np.full(S, 250.0), parts.sum(axis=1), (parts**2).sum(axis=1)


def timed(f, *args):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    out = f(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1,000 only")
    ap.add_argument("--repeat", type=int, default=2, help="best of this many rounds")
    args = ap.parse_args(argv)
    pbo_from_blocks(*blocks(20))  # compile / load the cached kernel
    print(f"S = {S}, numba threads = {numba.get_num_threads()}")
    print(f"{'trials':>7} {'numpy s':>8} {'kernel s':>9} {'ratio':>7} {'kernel cpu s':>13}  same")
    for n in (1_000,) if args.quick else (1_000, 10_000):
        data = blocks(n, seed=n)
        old_t = new_t = new_cpu = float("inf")
        for _ in range(max(1, args.repeat)):
            old, t, _ = timed(pbo_from_blocks_numpy, *data)
            old_t = min(old_t, t)
            new, t, cpu = timed(pbo_from_blocks, *data)
            new_t, new_cpu = min(new_t, t), min(new_cpu, cpu)
        same = old.pbo == new.pbo and np.array_equal(old.logits, new.logits)
        print(f"{n:>7,} {old_t:>8.2f} {new_t:>9.3f} {old_t / new_t:>6.0f}x {new_cpu:>13.3f}  "
              f"{'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
