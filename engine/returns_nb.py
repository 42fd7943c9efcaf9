"""Bar-return statistics of an equity curve (mean, stdev, downside deviation, VaR, CVaR),
shared bit for bit by full runs and sweeps, and the exact k-th smallest selection."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.simd_nb import dev_keep4

TAIL = 0.05  # VaR / CVaR tail share


N_BINS = 2048


@njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _bin_nb(v: float, lo: float, scale: float) -> int:
    # Monotone in v (values below lo share bin 0), so a bin's members are exactly the
    # values of a rank range.
    return max(min(int((v - lo) * scale), N_BINS - 1), 0)


@njit(nogil=True, cache=True, error_model="numpy")
def _select_nb(buf: np.ndarray, counts: np.ndarray, lo: float, scale: float, k: int) -> float:
    """k-th smallest (0-based) of buf, given its histogram `counts` over [lo, lo + N_BINS/scale]."""
    while True:
        b = 0
        while k >= counts[b]:
            k -= counts[b]
            b += 1
        out = np.empty(counts[b])
        j = 0
        for v in buf:
            if _bin_nb(v, lo, scale) == b:
                out[j] = v
                j += 1
        buf = out
        m = buf.shape[0]
        if m <= 256:
            return np.sort(buf)[k]
        lo = buf.min()
        hi = buf.max()
        if lo == hi:
            return lo
        scale = N_BINS / (hi - lo)
        if not np.isfinite(scale):
            return np.sort(buf)[k]
        counts = np.zeros(N_BINS, dtype=np.int64)
        for v in buf:
            counts[_bin_nb(v, lo, scale)] += 1


@njit(nogil=True, cache=True, error_model="numpy")
def kth_smallest_nb(x: np.ndarray, k: int) -> float:
    """The k-th smallest value (0-based) of x without sorting all of it (x is untouched).

    Histogram selection: count values into bins between min and max, keep only the bin
    holding rank k, repeat. The bin index is monotone in the value, so it is exact.
    """
    if x.shape[0] <= 256:
        return np.sort(x)[k]
    lo = x.min()
    hi = x.max()
    if lo == hi:
        return lo
    scale = N_BINS / (hi - lo)
    if not np.isfinite(scale):
        return np.sort(x)[k]
    counts = np.zeros(N_BINS, dtype=np.int64)
    for v in x:
        counts[_bin_nb(v, lo, scale)] += 1
    return _select_nb(x, counts, lo, scale, k)


# Returns below this count take the general path (a full histogram costs little there).
_FAST_MIN_RETURNS = 8192
_SAMPLE = 4096  # returns sampled to place the tail threshold and the variance's shift


@njit(nogil=True, cache=True, error_model="numpy")
def sample_stride_nb(m: int) -> int:
    """Stride of the strided sample of m returns (indices 0, stride, 2 stride, ...): odd,
    so it does not lock onto even periods."""
    return max(1, m // _SAMPLE) | 1


@njit(nogil=True, cache=True, error_model="numpy")
def shift_nb(sample: np.ndarray) -> float:
    """The variance's shift: the strided sample's mean, summed in index order."""
    s = 0.0
    for v in sample:
        s += v
    return s / sample.shape[0]


@njit(nogil=True, cache=True, error_model="numpy")
def stdev_nb(c: float, mean: float, shift: float, m: int) -> float:
    """Sample standard deviation (ddof=1) of m returns from c = sum((r - shift)^2):
    sum((r - mean)^2) = c - m (mean - shift)^2. With the shift within a few standard
    errors of the mean (the sample's mean is) the subtraction removes a tiny fraction of
    c and loses nothing; so one pass over the returns gives what two passes would, once
    the sample is known. Clamped at 0; NaN for m < 2."""
    if m < 2:
        return np.nan
    dm = mean - shift
    v = (c - m * (dm * dm)) / (m - 1)
    if v < 0.0:
        v = 0.0
    return np.sqrt(v)


@njit(nogil=True, cache=True, error_model="numpy")
def strided_sample_nb(rets: np.ndarray) -> np.ndarray:
    """rets[0], rets[stride], ... (`sample_stride_nb`)."""
    m = rets.shape[0]
    stride = sample_stride_nb(m)
    k = (m - 1) // stride + 1 if m > 0 else 0
    sample = np.empty(k)
    for j in range(k):
        sample[j] = rets[j * stride]
    return sample


@njit(nogil=True, cache=True, error_model="numpy")
def sample_cut_nb(sample: np.ndarray) -> float:
    """A return level that about 8% of the returns are at or below, from the sample:
    5% plus ~6 standard errors of a sample quantile (sqrt(0.05 * 0.95 / 4096) = 0.34%)."""
    k = sample.shape[0]
    return kth_smallest_nb(sample, min(k - 1, int(np.ceil(0.08 * k))))


@njit(nogil=True, cache=True, error_model="numpy")
def return_stats_nb(equity: np.ndarray) -> tuple[float, float, float, float, float]:
    """(mean, stdev ddof=1, downside deviation, VaR_95, CVaR_95) of bar returns, as fractions.

    Bar returns are equity[i+1] / equity[i] - 1 (equity must be > 0); VaR/CVaR use the
    K = ceil(5% of them) worst returns. Sums run in 4 interleaved lanes, in a fixed
    order, so results are deterministic. The stdev sums squares about a shift, the mean
    of a strided sample of the returns (`stdev_nb`), so the sums need one pass.

    For long series the strided sample also places a threshold safely above the 5%
    quantile, the pass that sums also keeps the returns at or below it, and the K-th
    smallest return and the tail sum come from those few (no histogram of all returns). Every quantity is the same number, bit for bit, as
    `_return_stats_general_nb` computes (the same divisions, the same additions in the
    same lane order; skipped additions are of +0.0). When the sample misjudges the
    threshold (ties, a strongly periodic series) the general path runs instead.
    """
    return return_stats_into_nb(equity, np.empty(stats_work_size(equity.shape[0] - 1)))


@njit(nogil=True, cache=True, error_model="numpy")
def stats_work_size(m: int) -> int:
    """Length of the float64 scratch `return_stats_into_nb` needs for m returns."""
    return max(m, 0) + 4 * (max(m, 0) // 8 + 16)


@njit(nogil=True, cache=True, error_model="numpy")
def return_stats_into_nb(
    equity: np.ndarray, work: np.ndarray
) -> tuple[float, float, float, float, float]:
    """`return_stats_nb` with caller-owned scratch (>= `stats_work_size(m)` floats), so a
    sweep reuses one buffer for every set instead of faulting in fresh pages each time."""
    m = equity.shape[0] - 1
    rets = work[:m]
    for i in range(m):  # its own loop: fused with the sums it would not vectorize
        rets[i] = equity[i + 1] / equity[i] - 1.0
    return return_stats_rets_nb(rets, work)


@njit(nogil=True, cache=True, error_model="numpy")
def return_stats_rets_nb(
    rets: np.ndarray, work: np.ndarray
) -> tuple[float, float, float, float, float]:
    """`return_stats_nb` of returns already in `work[:m]` (`rets` is that view); the rest
    of `work` is scratch. Sweeps fill the returns chunk by chunk as they simulate."""
    m = rets.shape[0]
    if m >= _FAST_MIN_RETURNS:
        ok, stats = _return_stats_sampled_nb(rets, work)
        if ok:
            return stats
    # One call site: LLVM inlines it, and several copies would multiply compile time.
    return _return_stats_general_rets_nb(rets)


@njit(nogil=True, cache=True, error_model="numpy")
def _return_stats_sampled_nb(
    rets: np.ndarray, work: np.ndarray
) -> tuple[bool, tuple[float, float, float, float, float]]:
    """(True, stats) by the sampled-threshold method, or (False, NaNs) when it cannot tell."""
    m = rets.shape[0]
    m4 = m - m % 4
    sample = strided_sample_nb(rets)
    shift = shift_nb(sample)
    if not np.isfinite(shift):  # non-finite returns: leave them to the general path
        return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
    n_tail = max(1, int(np.ceil(TAIL * m)))
    cut = sample_cut_nb(sample)
    cap = m // 8 + 16
    low_even = work[m : m + cap]  # returns <= cut at even indices, in index order
    low_odd = work[m + cap : m + 2 * cap]
    # Sums in 4 lanes (s, q, d) and the kept returns, in blocks short enough that the
    # buffers cannot overflow even if every return were kept (2 per buffer per 4).
    acc = np.zeros((3, 4))
    cnt = np.zeros(2, dtype=np.int64)
    i = 0
    while i < m4:
        avail = cap - max(cnt[0], cnt[1])
        if avail < 2:  # the threshold was too generous
            return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
        e = min(m4, i + avail // 2 * 4)
        dev_keep4(rets, i, e, shift, cut, acc[0], acc[1], acc[2], low_even, low_odd, cnt)
        i = e
    ne = cnt[0]
    no = cnt[1]
    room = cap - 2
    if ne > room or no > room:
        return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
    s0, s1, s2, s3 = acc[0, 0], acc[0, 1], acc[0, 2], acc[0, 3]
    q0, q1, q2, q3 = acc[1, 0], acc[1, 1], acc[1, 2], acc[1, 3]
    d0, d1, d2, d3 = acc[2, 0], acc[2, 1], acc[2, 2], acc[2, 3]
    for i in range(m4, m):
        r0 = rets[i]
        s0 += r0
        q0 += (r0 - shift) * (r0 - shift)
        d0 += min(r0, 0.0) * min(r0, 0.0)
        if i % 2 == 0:
            low_even[ne] = r0
            ne += r0 <= cut
        else:
            low_odd[no] = r0
            no += r0 <= cut
    mean = ((s0 + s1) + (s2 + s3)) / m
    if ne + no < n_tail or not np.isfinite(mean):  # the threshold was too tight
        return False, (np.nan, np.nan, np.nan, np.nan, np.nan)
    sd = stdev_nb((q0 + q1) + (q2 + q3), mean, shift, m)
    dsd = np.sqrt(((d0 + d1) + (d2 + d3)) / m)
    # Every return < v (the K-th smallest, itself <= cut) was kept, in index order.
    low = work[m + 2 * cap : m + 2 * cap + ne + no]
    for j in range(ne):  # explicit loops: slice assignment costs seconds of compile time
        low[j] = low_even[j]
    for j in range(no):
        low[ne + j] = low_odd[j]
    v = kth_smallest_nb(low, n_tail - 1)
    t0 = t1 = 0.0
    b = 0
    for j in range(ne):
        r = low_even[j]
        if r < v:
            t0 += r
            b += 1
    for j in range(no):
        r = low_odd[j]
        if r < v:
            t1 += r
            b += 1
    tail = (t0 + t1) + (n_tail - b) * v
    return True, (mean, sd, dsd, -v, -tail / n_tail)


@njit(nogil=True, cache=True, error_model="numpy")
def _return_stats_general_nb(equity: np.ndarray) -> tuple[float, float, float, float, float]:
    """`return_stats_nb` for any input: materializes the returns and selects the tail by
    histogram over all of them. Loops are written so LLVM can vectorize them: sums run
    in 4 interleaved lanes, in a fixed order, so results are deterministic.
    """
    m = equity.shape[0] - 1
    rets = np.empty(m)
    for i in range(m):
        rets[i] = equity[i + 1] / equity[i] - 1.0
    return _return_stats_general_rets_nb(rets)


@njit(nogil=True, cache=True, error_model="numpy")
def _return_stats_general_rets_nb(rets: np.ndarray) -> tuple[float, float, float, float, float]:
    """The general path given the returns."""
    m = rets.shape[0]
    m4 = m - m % 4
    s0 = s1 = s2 = s3 = 0.0
    lo0 = lo1 = lo2 = lo3 = np.inf
    hi0 = hi1 = hi2 = hi3 = -np.inf
    for i in range(0, m4, 4):
        r0 = rets[i]
        r1 = rets[i + 1]
        r2 = rets[i + 2]
        r3 = rets[i + 3]
        s0 += r0
        s1 += r1
        s2 += r2
        s3 += r3
        lo0 = r0 if r0 < lo0 else lo0
        lo1 = r1 if r1 < lo1 else lo1
        lo2 = r2 if r2 < lo2 else lo2
        lo3 = r3 if r3 < lo3 else lo3
        hi0 = r0 if r0 > hi0 else hi0
        hi1 = r1 if r1 > hi1 else hi1
        hi2 = r2 if r2 > hi2 else hi2
        hi3 = r3 if r3 > hi3 else hi3
    for i in range(m4, m):
        r0 = rets[i]
        s0 += r0
        lo0 = r0 if r0 < lo0 else lo0
        hi0 = r0 if r0 > hi0 else hi0
    mean = ((s0 + s1) + (s2 + s3)) / m
    lo = min(min(lo0, lo1), min(lo2, lo3))
    hi = max(max(hi0, hi1), max(hi2, hi3))
    shift = shift_nb(strided_sample_nb(rets)) if m > 0 else np.nan
    q0 = q1 = q2 = q3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    for i in range(0, m4, 4):
        r0 = rets[i]
        r1 = rets[i + 1]
        r2 = rets[i + 2]
        r3 = rets[i + 3]
        q0 += (r0 - shift) * (r0 - shift)
        q1 += (r1 - shift) * (r1 - shift)
        q2 += (r2 - shift) * (r2 - shift)
        q3 += (r3 - shift) * (r3 - shift)
        d0 += min(r0, 0.0) * min(r0, 0.0)
        d1 += min(r1, 0.0) * min(r1, 0.0)
        d2 += min(r2, 0.0) * min(r2, 0.0)
        d3 += min(r3, 0.0) * min(r3, 0.0)
    for i in range(m4, m):
        r0 = rets[i]
        q0 += (r0 - shift) * (r0 - shift)
        d0 += min(r0, 0.0) * min(r0, 0.0)
    sd = stdev_nb((q0 + q1) + (q2 + q3), mean, shift, m)
    dsd = np.sqrt(((d0 + d1) + (d2 + d3)) / m)
    n_tail = max(1, int(np.ceil(TAIL * m)))
    v = tail_value_nb(rets, rets[:0], lo, hi, n_tail - 1)
    t0 = t1 = 0.0
    b0 = b1 = 0
    m2 = m - m % 2
    for i in range(0, m2, 2):
        r0 = rets[i]
        r1 = rets[i + 1]
        t0 += r0 if r0 < v else 0.0
        t1 += r1 if r1 < v else 0.0
        b0 += 1 if r0 < v else 0
        b1 += 1 if r1 < v else 0
    if m2 < m:
        r0 = rets[m - 1]
        t0 += r0 if r0 < v else 0.0
        b0 += 1 if r0 < v else 0
    tail = (t0 + t1) + (n_tail - (b0 + b1)) * v
    return mean, sd, dsd, -v, -tail / n_tail


@njit(nogil=True, cache=True, error_model="numpy")
def tail_value_nb(ev: np.ndarray, od: np.ndarray, lo: float, hi: float, k: int) -> float:
    """The k-th smallest (0-based) of ev and od together, exactly (a full run passes all
    its returns as `ev`; the streamed sweep its kept even- and odd-indexed returns): one
    histogram pass over [lo, hi] (hi >= every value; values below lo go to the first
    bin), then the values of the bin holding rank k."""
    ne = ev.shape[0]
    no = od.shape[0]
    scale = N_BINS / (hi - lo)
    if not (hi > lo and np.isfinite(scale)):
        both = np.empty(ne + no)
        both[:ne] = ev
        both[ne:] = od
        return kth_smallest_nb(both, k)
    # Four interleaved histograms avoid a store-to-load chain on popular bins.
    counts4 = np.zeros((4, N_BINS), dtype=np.int64)
    bins = np.empty(ne + no, dtype=np.int16)
    for i in range(ne):
        b = _bin_nb(ev[i], lo, scale)
        bins[i] = b
        counts4[i & 3, b] += 1
    for i in range(no):
        b = _bin_nb(od[i], lo, scale)
        bins[ne + i] = b
        counts4[i & 3, b] += 1
    b = 0
    while True:
        c = counts4[0, b] + counts4[1, b] + counts4[2, b] + counts4[3, b]
        if k < c:
            break
        k -= c
        b += 1
    out = np.empty(c)
    j = 0
    for i in range(ne):
        if bins[i] == b:
            out[j] = ev[i]
            j += 1
    for i in range(no):
        if bins[ne + i] == b:
            out[j] = od[i]
            j += 1
    if c <= 256:
        return np.sort(out)[k]
    return kth_smallest_nb(out, k)
