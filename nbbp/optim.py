"""``nbbp.optim`` is :mod:`nbbp.train.optim`: this name keeps ``import nbbp.optim`` and
``from nbbp.optim import …`` working for code written before training had its own package."""

import sys

from .train import optim

sys.modules[__name__] = optim
