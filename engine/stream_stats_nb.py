"""Streamed bar-return statistics for the tiled sweep (`engine.sweep_tile_nb`).

The returns of a set arrive chunk by chunk and are never stored; these kernels add them
up in exactly the order `return_stats_nb` (its sampled path) and `block_stats_nb` use:
the sums, the squares about the shift and the downside squares in 4 lanes by return
index (lane g % 4 before the last m % 4 returns, lane 0 for those), the kept tail
(returns at or below the sampled threshold, even and odd indices apart, in index order),
and per block the lanes counted from the block's start. So every sum is the same
number, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.returns_nb import stdev_nb, tail_value_nb
from engine.simd_nb import div_dev_keep4, sum_sq4


@njit(nogil=True, cache=True, error_model="numpy")
def lane_sum_nb(x: np.ndarray, g0: int, m4: int, s: np.ndarray, q: np.ndarray) -> None:
    """s[l] += x, q[l] += x * x for element t in lane l = (g0 + t) % 4 while g0 + t < m4,
    in lane 0 from there on (`block_stats_nb`'s order; `sum_sq4` does the aligned part)."""
    n = x.shape[0]
    lim = min(n, max(m4 - g0, 0))
    t = 0
    while t < lim and (g0 + t) % 4 != 0:
        s[(g0 + t) % 4] += x[t]
        q[(g0 + t) % 4] += x[t] * x[t]
        t += 1
    end4 = t + (lim - t) // 4 * 4
    sum_sq4(x, t, end4, s, q)
    for k in range(end4, lim):
        s[(g0 + k) % 4] += x[k]
        q[(g0 + k) % 4] += x[k] * x[k]
    for k in range(lim, n):
        s[0] += x[k]
        q[0] += x[k] * x[k]


@njit(nogil=True, cache=True, error_model="numpy")
def lane_dev_nb(x: np.ndarray, g0: int, m4: int, shift: float, s: np.ndarray, q: np.ndarray,
                d: np.ndarray) -> None:
    """s[l] += x, q[l] += (x - shift)^2, d[l] += min(x, 0)^2 in the lanes of `lane_sum_nb`
    (the latter as x * x if x < 0 else 0.0: the same number for the finite returns
    streamed here)."""
    n = x.shape[0]
    lim = min(n, max(m4 - g0, 0))
    t = 0
    while t < lim and (g0 + t) % 4 != 0:
        _dev_one_nb(x[t], (g0 + t) % 4, shift, s, q, d)
        t += 1
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    d0, d1, d2, d3 = d[0], d[1], d[2], d[3]
    end4 = t + (lim - t) // 4 * 4
    for k in range(t, end4, 4):
        r0 = x[k]
        r1 = x[k + 1]
        r2 = x[k + 2]
        r3 = x[k + 3]
        s0 += r0
        s1 += r1
        s2 += r2
        s3 += r3
        q0 += (r0 - shift) * (r0 - shift)
        q1 += (r1 - shift) * (r1 - shift)
        q2 += (r2 - shift) * (r2 - shift)
        q3 += (r3 - shift) * (r3 - shift)
        d0 += r0 * r0 if r0 < 0.0 else 0.0
        d1 += r1 * r1 if r1 < 0.0 else 0.0
        d2 += r2 * r2 if r2 < 0.0 else 0.0
        d3 += r3 * r3 if r3 < 0.0 else 0.0
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    q[0], q[1], q[2], q[3] = q0, q1, q2, q3
    d[0], d[1], d[2], d[3] = d0, d1, d2, d3
    for k in range(end4, lim):
        _dev_one_nb(x[k], (g0 + k) % 4, shift, s, q, d)
    for k in range(lim, n):
        _dev_one_nb(x[k], 0, shift, s, q, d)


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _dev_one_nb(r: float, lane: int, shift: float, s: np.ndarray, q: np.ndarray,
                d: np.ndarray) -> None:
    s[lane] += r
    q[lane] += (r - shift) * (r - shift)
    d[lane] += r * r if r < 0.0 else 0.0


@njit(nogil=True, cache=True, error_model="numpy")
def div_dev_keep_nb(e: np.ndarray, x: np.ndarray, g0: int, m4: int, shift: float, cut: float,
                    s: np.ndarray, q: np.ndarray, d: np.ndarray, ev: np.ndarray,
                    od: np.ndarray, cnt: np.ndarray) -> None:
    """`lane_dev_nb` and `keep_tail_nb` in one pass on the returns x[t] = e[t + 1] / e[t]
    - 1 (len(e) = len(x) + 1), which it computes into x on the way (`simd_nb.div_dev_keep4`
    for the vector lanes: the divisions beside the sums, and a compress-store); the caller
    makes sure `ev` and `od` have room for all of x. The returns are finite here, so
    min(r, 0)^2 is r * r if r < 0 else 0.0, the same number."""
    n = x.shape[0]
    lim = min(n, max(m4 - g0, 0))
    ne = cnt[0]
    no = cnt[1]
    t = 0
    while t < lim and (g0 + t) % 4 != 0:
        x[t] = e[t + 1] / e[t] - 1.0
        ne, no = _dev_keep_one_nb(x[t], g0 + t, (g0 + t) % 4, shift, cut, s, q, d, ev, od,
                                  ne, no)
        t += 1
    end4 = t + (lim - t) // 4 * 4
    cnt[0] = ne
    cnt[1] = no
    div_dev_keep4(e, t, end4, shift, cut, x, s, q, d, ev, od, cnt)
    ne = cnt[0]
    no = cnt[1]
    for k in range(end4, n):
        x[k] = e[k + 1] / e[k] - 1.0
        g = g0 + k
        ne, no = _dev_keep_one_nb(x[k], g, g % 4 if g < m4 else 0, shift, cut, s, q, d, ev, od,
                                  ne, no)
    cnt[0] = ne
    cnt[1] = no


@njit(nogil=True, cache=True, error_model="numpy")
def rets_from_nb(e: np.ndarray, x: np.ndarray) -> None:
    """x[t] = e[t + 1] / e[t] - 1 (the bar returns of the equity e)."""
    for t in range(x.shape[0]):
        x[np.uint64(t)] = e[np.uint64(t + 1)] / e[np.uint64(t)] - 1.0


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _dev_keep_one_nb(r: float, g: int, lane: int, shift: float, cut: float, s: np.ndarray,
                     q: np.ndarray, d: np.ndarray, ev: np.ndarray, od: np.ndarray, ne: int,
                     no: int) -> tuple[int, int]:
    _dev_one_nb(r, lane, shift, s, q, d)
    if g % 2 == 0:
        ev[ne] = r
        ne += r <= cut
    else:
        od[no] = r
        no += r <= cut
    return ne, no


@njit(nogil=True, cache=True, error_model="numpy")
def keep_tail_nb(x: np.ndarray, g0: int, cut: float, ev: np.ndarray, od: np.ndarray,
                 cnt: np.ndarray) -> None:
    """Append x[t] <= cut to `ev` (even return index g0 + t) or `od` (odd), in index
    order; cnt[0], cnt[1] count them. Branch-free: every value is written, the count
    advances past kept ones. Rows hold 2 more than the capacity; beyond it the counts
    jump past it and nothing more is kept (the set then takes the general path)."""
    ne = cnt[0]
    no = cnt[1]
    full = ev.shape[0] - 2
    n = x.shape[0]
    t = 0
    if n > 0 and g0 % 2 == 1 and no <= full:
        od[no] = x[0]
        no += x[0] <= cut
        t = 1
    for k in range(t, n - 1, 2):
        if ne > full or no > full:
            break
        r0 = x[k]
        r1 = x[k + 1]
        ev[ne] = r0
        ne += r0 <= cut
        od[no] = r1
        no += r1 <= cut
    if (n - t) % 2 == 1 and ne <= full:
        ev[ne] = x[n - 1]
        ne += x[n - 1] <= cut
    if ne > full or no > full:
        ne = no = 2 * full + 2
    cnt[0] = ne
    cnt[1] = no


@njit(nogil=True, cache=True, error_model="numpy")
def block_add_nb(x: np.ndarray, g0: int, base: int, extra: int, blocks: int,
                  bsum: np.ndarray, bsq: np.ndarray) -> None:
    """Add returns g0 .. g0 + len(x) - 1 to their blocks' lane sums (`block_stats_nb`)."""
    t = 0
    k = x.shape[0]
    while t < k:
        g = g0 + t
        # Block holding return g: the first `extra` blocks are one longer.
        big = extra * (base + 1)
        bb = g // (base + 1) if g < big else extra + (g - big) // base
        start = bb * (base + 1) if bb < extra else big + (bb - extra) * base
        size = base + 1 if bb < extra else base
        e = min(k, start + size - g0)
        lane_sum_nb(x[t:e], g - start, size - size % 4, bsum[bb], bsq[bb])
        t = e


@njit(nogil=True, cache=True, error_model="numpy")
def tail_stats_nb(
    ev: np.ndarray, od: np.ndarray, n_tail: int, mean: float, shift: float, q: np.ndarray,
    d: np.ndarray, m: int, lo: float, hi: float,
) -> tuple[float, float, float, float, float]:
    """`_return_stats_sampled_nb`'s result from the kept returns and the lane sums (`mean`
    from the sums of the returns, `q` the squares about `shift`); `lo` and `hi` >= every
    kept return bound the selection's histogram (`tail_value_nb`)."""
    sd = stdev_nb((q[0] + q[1]) + (q[2] + q[3]), mean, shift, m)
    dsd = np.sqrt(((d[0] + d[1]) + (d[2] + d[3])) / m)
    v = tail_value_nb(ev, od, lo, hi, n_tail - 1)
    # Branch-free: adding +0.0 leaves these sums as they are (they start at +0.0 and the
    # returns are finite, so they are never -0.0).
    t0 = t1 = 0.0
    b = 0
    for j in range(ev.shape[0]):
        t0 += ev[j] if ev[j] < v else 0.0
        b += ev[j] < v
    for j in range(od.shape[0]):
        t1 += od[j] if od[j] < v else 0.0
        b += od[j] < v
    tail = (t0 + t1) + (n_tail - b) * v
    return mean, sd, dsd, -v, -tail / n_tail


@njit(nogil=True, cache=True, error_model="numpy")
def div_dev_keep_chunk_nb(e: np.ndarray, x: np.ndarray, g0: int, m4: int, shift: float,
                          cut: float, s: np.ndarray, q: np.ndarray, d: np.ndarray,
                          ev: np.ndarray, od: np.ndarray, cnt: np.ndarray) -> bool:
    """One chunk of returns (indices g0 ..) of the streamed statistics, the returns
    x[t] = e[t + 1] / e[t] - 1 computed into x (len(e) = len(x) + 1): the lane sums and
    the kept tail (rows `ev`, `od` of capacity len - 2, see `keep_tail_nb`).
    Returns True when the chunk ends at or after return m4 - 1 and the kept counts there
    exceed what `_return_stats_sampled_nb` has room for (it then takes its general path)."""
    cap = ev.shape[0] - 2
    k = x.shape[0]
    split = min(k, max(m4 - g0, 0))
    over = False
    if max(cnt[0], cnt[1]) + k // 2 + 1 <= cap:  # room for all of x: one fused loop
        div_dev_keep_nb(e[: split + 1], x[:split], g0, m4, shift, cut, s, q, d, ev, od, cnt)
        if split < k or g0 + k == m4:
            over = cnt[0] > cap - 2 or cnt[1] > cap - 2
        div_dev_keep_nb(e[split:], x[split:], g0 + split, m4, shift, cut, s, q, d, ev, od, cnt)
    else:
        rets_from_nb(e, x)
        lane_dev_nb(x, g0, m4, shift, s, q, d)
        keep_tail_nb(x[:split], g0, cut, ev, od, cnt)
        if split < k or g0 + k == m4:
            over = cnt[0] > cap - 2 or cnt[1] > cap - 2
        keep_tail_nb(x[split:], g0 + split, cut, ev, od, cnt)
    return over
