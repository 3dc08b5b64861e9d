"""Shared fixtures. Kernels compile (or load from the cache) once per session."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(params=["numba", "python"])
def engine(request) -> str:
    """Run a test on the compiled engine and on the NumPy reference path."""
    return request.param
