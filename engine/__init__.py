"""Pure numerics for backtesting: bars, numba kernels, indicators, metrics, sweeps."""

import os

# numba's parallel kernels run on OpenMP; by default its idle threads spin after every
# parallel region (milliseconds), which in a service steals the core that the Python
# side of the next batch needs (the embedded 10,000-combination grid took ~10% longer).
# Set before the OpenMP runtime loads (at the first parallel launch); an explicit
# setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
