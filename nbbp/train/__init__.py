"""Training: optimizers, losses, the compiled loop, predictions, data sets, checks.

``nbbp.optim`` and ``nbbp.datasets`` are :mod:`nbbp.train.optim` and
:mod:`nbbp.train.datasets`. What training keeps per model (its history, its last
loop) is in the side table of :mod:`nbbp.train.state`, not on the model.
"""

from .loop import TrainLoop, fit
from .predict import accuracy, classifier_data, predict, prediction_node
from .state import History, history

__all__ = ["History", "TrainLoop", "accuracy", "classifier_data", "fit", "history", "predict",
           "prediction_node"]
