"""``nbbp.datasets`` is :mod:`nbbp.train.datasets`: this name keeps ``import nbbp.datasets`` and
``from nbbp.datasets import …`` working for code written before training had its own package."""

import sys

from .train import datasets

sys.modules[__name__] = datasets
