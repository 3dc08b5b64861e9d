"""``tf.train``: TensorFlow 1's optimizers, as options of nbbp's one implementation.

``opt.minimize(loss)`` = ``compute_gradients`` (symbolic gradients of the loss for
every trainable variable) + ``apply_gradients`` (one op that, when a session runs
it, computes the gradients in the compiled program and then applies the update
with :mod:`nbbp.train.optim`'s rule — the compiled kernel, or its NumPy reference
``step_numpy`` on ``engine="python"``). Slots (momentum accumulators, Adam's
moments and its ``beta1_power``/``beta2_power``) are real, non-trainable
variables of the graph, named as in TF 1 (``W/Momentum``, ``W/Adam``,
``W/Adam_1``): ``tf.global_variables_initializer()`` must be created after
``minimize`` to include them — as in TF 1. (:mod:`._apply` runs the update.)

TF 1's rules are nbbp's optimizers with TF 1's options: GradientDescent is
``SGD``, Momentum ``TF1Momentum(momentum, nesterov)`` (SGD in TF 1's form), Adagrad
``Adagrad(eps=0)`` with
its accumulators starting at 0.1, Adam and RMSProp ``Adam(form="tf1")`` (ε̂ after
the bias correction) and ``RMSProp(form="tf1")`` (ε inside the root, the learning
rate inside the momentum).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..train import optim
from ._core import Operation, Tensor, convert_to_tensor, get_default_graph, graph_of
from ._grad import gradients
from ._names import module_getattr
from ._schedules import exponential_decay
from ._variables import (
    GLOBAL_VARIABLES,
    GraphKeys,
    Variable,
    constant_initializer,
    trainable_variables,
    zeros_initializer,
)
from .errors import UsageError
from .saver import (
    CheckpointState,
    Saver,
    checkpoint_exists,
    get_checkpoint_state,
    latest_checkpoint,
)

# ---------------------------------------------------------------------------
# the update rules, one step on NumPy arrays (TF 1's kernels' arguments)
# ---------------------------------------------------------------------------


def _f64(x: Any) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def sgd_update(var: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """``var -= lr * grad`` (ApplyGradientDescent)."""
    return optim.SGD.unchecked(lr=lr).step_numpy(_f64(var), _f64(grad), [], 1)


def momentum_update(var, accum, grad, lr: float, momentum: float, use_nesterov: bool = False):
    """ApplyMomentum: ``accum = accum*momentum + grad``; ``var -= lr*accum``, or with
    Nesterov ``var -= grad*lr + accum*momentum*lr``. Returns (var, accum)."""
    state = [_f64(accum)]
    rule = optim.TF1Momentum.unchecked(lr=lr, momentum=momentum, nesterov=use_nesterov)
    return rule.step_numpy(_f64(var), _f64(grad), state, 1), state[0]


def adam_update(var, m, v, grad, lr: float, beta1: float, beta2: float, epsilon: float,
                beta1_power: float, beta2_power: float, use_nesterov: bool = False):
    """ApplyAdam: ``lr_t = lr·sqrt(1 − β₂ᵗ)/(1 − β₁ᵗ)``; ``m += (g − m)(1 − β₁)``;
    ``v += (g² − v)(1 − β₂)``; ``var −= lr_t·m/(sqrt(v) + ε̂)``. Returns (var, m, v).

    ε̂ ("epsilon hat") is added to sqrt(v) *after* the bias correction is folded into
    ``lr_t`` — TF 1's form, not the paper's Algorithm 1.
    """
    state = [_f64(m), _f64(v)]
    rule = optim.Adam.unchecked(lr=lr, betas=(beta1, beta2), eps=epsilon, form="tf1",
                      nesterov=use_nesterov)
    new = rule.step_numpy(_f64(var), _f64(grad), state, 1, powers=(beta1_power, beta2_power))
    return new, state[0], state[1]


def adagrad_update(var, accum, grad, lr: float):
    """ApplyAdagrad: ``accum += g²``; ``var -= lr·g/sqrt(accum)``. Returns (var, accum)."""
    state = [_f64(accum)]
    rule = optim.Adagrad.unchecked(lr=lr, eps=0.0)
    return rule.step_numpy(_f64(var), _f64(grad), state, 1), state[0]


def rmsprop_update(var, ms, mom, grad, lr: float, decay: float, momentum: float,
                   epsilon: float):
    """ApplyRMSProp: ``ms += (g² − ms)(1 − decay)``; ``mom = mom·momentum +
    lr·g/sqrt(ms + ε)``; ``var −= mom``. Returns (var, ms, mom)."""
    state = [_f64(ms), _f64(mom)]
    rule = optim.RMSProp.unchecked(lr=lr, alpha=decay, eps=epsilon, momentum=momentum,
                         form="tf1")
    return rule.step_numpy(_f64(var), _f64(grad), state, 1), state[0], state[1]


# ---------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------


class Optimizer:
    """Base class: ``minimize``, ``compute_gradients``, ``apply_gradients``, slots.

    Subclasses list their hyperparameters (numbers or scalar tensors, e.g. a
    placeholder for a decaying learning rate) and their slots (in the order of the
    rule's state), and give ``_rule(hyper)``: :mod:`nbbp.train.optim`'s optimizer
    with TF 1's options.
    """

    _slots: tuple[tuple[str, float], ...] = ()     # (slot name, initial value)

    def __init__(self, use_locking: bool, name: str, **hyper: Any) -> None:
        self._name = name
        self._hyper = hyper
        self._slot_vars: dict[tuple[str, Variable], Variable] = {}
        self._non_slot: dict[str, Variable] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"tf.train.{type(self).__name__}({args})"

    def get_name(self) -> str:
        return self._name

    def compute_gradients(self, loss: Tensor, var_list: list[Variable] | None = None,
                          **unused: Any) -> list[tuple[Tensor | None, Variable]]:
        """``(gradient, variable)`` pairs; the gradient is None if the loss does not
        depend on the variable."""
        if not isinstance(loss, Tensor):
            raise UsageError(f"compute_gradients needs the loss tensor, got {loss!r}")
        if var_list is None:
            with loss.graph.as_default():
                var_list = trainable_variables()
        var_list = list(var_list)
        if not var_list:
            raise UsageError("No variables to optimize: create them with tf.Variable or "
                             "tf.get_variable (trainable=True) before calling minimize")
        for v in var_list:
            if not isinstance(v, Variable):
                raise UsageError(f"var_list must hold tf.Variable objects, got {v!r}")
            if not v.dtype.is_floating:
                raise UsageError(f"Invalid type {v.dtype!r} for {v.op.name}:0, expected: "
                                 "[tf.float32, tf.float64].")
        grads = gradients(loss, var_list)
        return list(zip(grads, var_list))

    def minimize(self, loss: Tensor, global_step: Variable | None = None,
                 var_list: list[Variable] | None = None, name: str | None = None,
                 **unused: Any) -> Operation:
        """One op that, run once, takes one optimisation step on ``loss``."""
        pairs = self.compute_gradients(loss, var_list)
        if all(g is None for g, _ in pairs):
            names = ", ".join(repr(v) for _, v in pairs)
            raise UsageError(f"No gradients provided for any variable, check your graph for "
                             f"ops that do not support gradients, between variables [{names}] "
                             f"and loss {loss}.")
        return self.apply_gradients(pairs, global_step=global_step, name=name)

    def apply_gradients(self, grads_and_vars: Any, global_step: Variable | None = None,
                        name: str | None = None) -> Operation:
        """One op applying the update rule to each ``(gradient, variable)`` pair."""
        pairs = [(g, v) for g, v in grads_and_vars]
        kept = [(g, v) for g, v in pairs if g is not None]
        if not kept:
            raise UsageError(f"No gradients provided for any variable: {tuple(pairs)}")
        graph = graph_of([v for _, v in kept] + [g for g, _ in kept], "apply_gradients")
        with graph.as_default():
            grads = [convert_to_tensor(g) for g, _ in kept]
            for g, (_, v) in zip(grads, kept):
                if g._shape is not None and None not in g._shape and g._shape != v._shape:
                    raise UsageError(f"apply_gradients: the gradient {g.name} has shape "
                                     f"{g._shape} but variable {v.op.name} has {v._shape}")
            hyper = {k: convert_to_tensor(x, name=k) if isinstance(x, Tensor) else float(x)
                     for k, x in self._hyper.items() if not isinstance(x, bool)}
            for _, v in kept:
                self._create_slots(v)
            self._create_non_slots(kept[0][1])
            hyper_names = [k for k, x in hyper.items() if isinstance(x, Tensor)]
            inputs = tuple(grads) + tuple(hyper[k] for k in hyper_names)
            full = graph.unique_name(name or self._name)
            return graph._add_op("ApplyGradients", inputs, {
                "optimizer": self, "vars": [v for _, v in kept], "hyper_names": hyper_names,
                "hyper": hyper, "global_step": global_step}, full, False)

    # -- slots ---------------------------------------------------------------
    def _create_slots(self, var: Variable) -> None:
        for i, (slot, init) in enumerate(self._slots):
            key = (slot, var)
            if key in self._slot_vars:
                continue
            suffix = self._name if i == 0 else f"{self._name}_{i}"
            initial = zeros_initializer() if init == 0.0 else constant_initializer(init)
            with var.graph.as_default(), var.graph._absolute_scope(""):
                self._slot_vars[key] = Variable(
                    lambda: initial(list(var._shape), dtype=var.dtype),
                    name=f"{var.op.name}/{suffix}", trainable=False, dtype=var.dtype)

    def _create_non_slots(self, first_var: Variable) -> None:
        pass

    def get_slot(self, var: Variable, name: str) -> Variable | None:
        return self._slot_vars.get((name, var))

    def get_slot_names(self) -> list[str]:
        return [s for s, _ in self._slots]

    def variables(self) -> list[Variable]:
        return list(self._non_slot.values()) + list(self._slot_vars.values())

    # -- the update (run by Update) -----------------------------------------
    _rule_class: type[optim.Optimizer] = optim.SGD

    def _rule(self, hyper: dict[str, float]) -> optim.Optimizer:
        """nbbp's optimizer with TF 1's options, at these hyperparameter values."""
        return optim.SGD.unchecked(lr=hyper["learning_rate"])

    def _slot_list(self, var: Variable) -> list[Variable]:
        """The variable's slots, in the order of the rule's state."""
        return [self._slot_vars[(slot, var)] for slot, _ in self._slots]

    def _powers(self, session: Any) -> tuple[float, float] | None:
        return None

    def _finish(self, session: Any, hyper: dict) -> None:
        pass


class GradientDescentOptimizer(Optimizer):
    """``var -= learning_rate * grad``."""

    def __init__(self, learning_rate: float | Tensor, use_locking: bool = False,
                 name: str = "GradientDescent") -> None:
        super().__init__(use_locking, name, learning_rate=learning_rate)


class MomentumOptimizer(Optimizer):
    """``accum = momentum*accum + grad``; ``var -= learning_rate*accum`` (slot
    ``W/Momentum``); ``use_nesterov=True`` for Nesterov's variant."""

    _slots = (("momentum", 0.0),)

    def __init__(self, learning_rate: float | Tensor, momentum: float | Tensor,
                 use_locking: bool = False, name: str = "Momentum",
                 use_nesterov: bool = False) -> None:
        super().__init__(use_locking, name, learning_rate=learning_rate, momentum=momentum)
        self._nesterov = bool(use_nesterov)

    def _rule(self, hyper):
        return optim.TF1Momentum.unchecked(lr=hyper["learning_rate"],
                         momentum=hyper["momentum"], nesterov=self._nesterov)


class AdamOptimizer(Optimizer):
    """Adam with TF 1's formula (see :func:`adam_update`); slots ``W/Adam`` (m) and
    ``W/Adam_1`` (v), and the variables ``beta1_power``, ``beta2_power``."""

    _slots = (("m", 0.0), ("v", 0.0))
    _rule_class = optim.Adam

    def __init__(self, learning_rate: float | Tensor = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8, use_locking: bool = False,
                 name: str = "Adam") -> None:
        super().__init__(use_locking, name, learning_rate=learning_rate, beta1=beta1,
                         beta2=beta2, epsilon=epsilon)

    def _create_non_slots(self, first_var: Variable) -> None:
        if self._non_slot:
            return
        g = first_var.graph
        with g.as_default(), g._absolute_scope(""):
            for key in ("beta1", "beta2"):
                value = self._hyper[key]
                if isinstance(value, Tensor):
                    raise UsageError(f"AdamOptimizer: {key} must be a number in nbbp.tf1")
                self._non_slot[key] = Variable(float(value), name=f"{key}_power",
                                               trainable=False, dtype=first_var.dtype)

    def _rule(self, hyper):
        return optim.Adam.unchecked(lr=hyper["learning_rate"],
                          betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["epsilon"],
                          form="tf1")

    def _powers(self, session):
        return (float(session._read(self._non_slot["beta1"])),
                float(session._read(self._non_slot["beta2"])))

    def _finish(self, session, hyper):
        for key in ("beta1", "beta2"):
            power = self._non_slot[key]
            session._store(power, session._read(power) * hyper[key], f"{key}_power")


class AdagradOptimizer(Optimizer):
    """``accum += grad²``; ``var -= lr*grad/sqrt(accum)``; accumulators start at
    ``initial_accumulator_value`` (TF 1: 0.1)."""

    _rule_class = optim.Adagrad

    def __init__(self, learning_rate: float | Tensor, initial_accumulator_value: float = 0.1,
                 use_locking: bool = False, name: str = "Adagrad") -> None:
        super().__init__(use_locking, name, learning_rate=learning_rate)
        self._initial = float(initial_accumulator_value)
        self._slots = (("accumulator", self._initial),)

    def _rule(self, hyper):
        return optim.Adagrad.unchecked(lr=hyper["learning_rate"], eps=0.0,
                             initial_accumulator=self._initial)


class RMSPropOptimizer(Optimizer):
    """TF 1's RMSProp (not centered): the mean square starts at **one** (slot
    ``W/RMSProp``), the momentum at zero (``W/RMSProp_1``)."""

    _slots = (("rms", 1.0), ("momentum", 0.0))
    _rule_class = optim.RMSProp

    def __init__(self, learning_rate: float | Tensor, decay: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-10, use_locking: bool = False,
                 centered: bool = False, name: str = "RMSProp") -> None:
        if centered:
            raise UsageError("RMSPropOptimizer(centered=True) is not supported by nbbp.tf1")
        super().__init__(use_locking, name, learning_rate=learning_rate, decay=decay,
                         momentum=momentum, epsilon=epsilon)

    def _rule(self, hyper):
        return optim.RMSProp.unchecked(lr=hyper["learning_rate"], alpha=hyper["decay"],
                             eps=hyper["epsilon"], momentum=hyper["momentum"], form="tf1")


def get_or_create_global_step(graph: Any = None) -> Variable:
    """The graph's ``global_step`` variable (a non-trainable counter), made if needed."""
    g = graph or get_default_graph()
    found = g.get_collection(GraphKeys.GLOBAL_STEP)
    if found:
        return found[0]
    with g.as_default(), g._absolute_scope(""):
        step = Variable(0, name="global_step", trainable=False, dtype="int64",
                        collections=[GLOBAL_VARIABLES, GraphKeys.GLOBAL_STEP])
    return step


def get_global_step(graph: Any = None) -> Variable | None:
    found = (graph or get_default_graph()).get_collection(GraphKeys.GLOBAL_STEP)
    return found[0] if found else None


__all__ = ["AdagradOptimizer", "AdamOptimizer", "GradientDescentOptimizer",
           "MomentumOptimizer", "Optimizer", "RMSPropOptimizer", "adagrad_update",
           "adam_update", "get_global_step", "get_or_create_global_step",
           "momentum_update", "rmsprop_update", "sgd_update"]
__all__ += ["CheckpointState", "Saver", "checkpoint_exists", "exponential_decay",
            "get_checkpoint_state", "latest_checkpoint"]

__getattr__ = module_getattr("train")
