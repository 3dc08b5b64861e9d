"""Training: optimizers, losses, the compiled loop, predictions, data sets, checks.

``nbbp.optim`` and ``nbbp.datasets`` are :mod:`nbbp.train.optim` and
:mod:`nbbp.train.datasets`.
"""

from .loop import History, TrainLoop, accuracy, fit, predict, prediction_node

__all__ = ["History", "TrainLoop", "accuracy", "fit", "predict", "prediction_node"]
