"""Benchmark harness: nbbp against micrograd, HIPS autograd, PyTorch, JAX and hand NumPy.

Run from the repository root with ``python -m bench`` (or ``python bench/run.py``);
see ``bench/README.md`` and ``/work/shared/BENCHMARKS.md`` for the workloads.

This package deliberately imports nothing heavy at import time, so that ``bench.run``
can pin the thread count of BLAS, XLA and Numba before NumPy or a peer is loaded.
"""
