"""Random-weight models built on the spot, for tests and shape-only benchmarks (never served)."""
