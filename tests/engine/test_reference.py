"""Property tests: the numba kernel matches the pure-Python reference and any chunking."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.backtest import Backtester, run_backtest
from engine.options import EngineOptions
from tests.engine.reference import random_bars, reference_run

REL = 1e-9


def _close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=REL * scale)


@st.composite
def engine_options(draw: st.DrawFn) -> EngineOptions:
    mode = draw(st.sampled_from(["units", "lots", "notional", "percent"]))
    frac = draw(st.booleans())
    value = {
        "units": draw(st.integers(1, 500)),
        "lots": draw(st.integers(1, 5)),
        "notional": draw(st.floats(500, 200_000)),
        "percent": draw(st.floats(1, 300)),
    }[mode]
    opts: dict = {
        "initial_cash": draw(st.sampled_from([1_000.0, 100_000.0])),
        "direction": draw(st.sampled_from(["long_short", "long_only", "short_only"])),
        "size_mode": mode,
        "size_value": value,
        "lot_size": draw(st.sampled_from([1, 1, 25, 75])),
        "allow_fractional": frac,
        "option_delta": draw(st.sampled_from([1.0, 0.5, 0.37])),
        "commission_fixed": draw(st.sampled_from([0.0, 20.0])),
        "commission_per_unit": draw(st.sampled_from([0.0, 0.01])),
        "commission_pct": draw(st.sampled_from([0.0, 0.03])),
        "slippage_bps": draw(st.sampled_from([0.0, 2.5])),
        "slippage_ticks": draw(st.sampled_from([0.0, 1.0, 3.0])),
        "tick_size": draw(st.sampled_from([0.05, 0.01])),
        "atr_period": draw(st.integers(1, 6)),
    }
    for kind, pct_range in (("stop_loss", (0.2, 5)), ("take_profit", (0.2, 8)),
                            ("trailing", (0.2, 5))):
        choice = draw(st.sampled_from(["none", "pct", "atr"]))
        if choice == "pct":
            opts[f"{kind}_pct"] = draw(st.floats(*pct_range))
        elif choice == "atr":
            opts[f"{kind}_atr"] = draw(st.floats(0.3, 4))
    opts["square_off"] = draw(st.sampled_from([None, None, "09:40", "09:55"]))
    opts["no_entry_after"] = draw(st.sampled_from([None, None, "09:30", "09:50"]))
    return EngineOptions(**opts)


@st.composite
def scenario(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    bars = random_bars(rng, n, per_day=draw(st.sampled_from([5, 10])),
                       gap=draw(st.sampled_from([0.0, 0.004, 0.02])))
    hold = draw(st.sampled_from([1, 3, 8]))
    raw = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=n)
    sig = np.repeat(raw, hold)[:n]  # some persistence, so positions last
    return bars, sig, draw(engine_options()), draw(st.integers(1, 80))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_kernel_matches_reference(case: tuple) -> None:
    bars, sig, opts, chunk = case
    res = run_backtest(bars, sig, opts, chunk_size=chunk)
    ref_equity, ref_trades = reference_run(bars, sig, opts)
    scale = opts.initial_cash
    assert len(res.equity) == len(ref_equity)
    for i, (a, b) in enumerate(zip(res.equity.tolist(), ref_equity, strict=True)):
        assert _close(a, b, scale), (i, a, b)
    got = [t.to_dict() for t in res.trades]
    assert len(got) == len(ref_trades), (got, ref_trades)
    for g, r in zip(got, ref_trades, strict=True):
        for key in ("entry_idx", "exit_idx", "side", "exit_reason", "is_open", "bars_held"):
            assert g[key] == r[key], (key, g, r)
        for key in ("qty", "entry_price", "exit_price", "pnl", "commission"):
            assert _close(g[key], r[key], scale), (key, g, r)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.lists(st.integers(1, 25), min_size=1, max_size=8))
def test_any_chunking_is_bit_identical(case: tuple, steps: list[int]) -> None:
    bars, sig, opts, _ = case
    whole = run_backtest(bars, sig, opts)
    bt = Backtester(bars, sig, opts)
    k = 0
    pieces = []
    while not bt.done:
        info = bt.step(steps[k % len(steps)])
        pieces.append(info.equity)
        k += 1
    chunked = bt.result()
    assert info.bars_done == len(bars) and info.progress == 1.0
    assert np.array_equal(np.concatenate(pieces), whole.equity)
    assert np.array_equal(chunked.equity, whole.equity)
    assert chunked.trades == whole.trades
    assert chunked.metrics == whole.metrics
