"""Pure numerics for backtesting: bars, numba kernels, indicators, metrics, sweeps."""
