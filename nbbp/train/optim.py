"""Optimizers with PyTorch's update rules (and TF 1's as options), run inside the
compiled training loop.

Each optimizer is plain data: a kernel opcode, its hyperparameters and how many
state slots each parameter needs. :meth:`nbbp.Model.fit` lowers it to update
instructions that :mod:`nbbp.core.kernels` runs after every backward pass, so a whole
training loop is one compiled call. :meth:`Optimizer.step_numpy` is the same
rule in NumPy, the readable reference the tests compare the kernel against.

Hyperparameter block (float64s in the arena, ``H_*`` indices below): learning
rate, β₁ / momentum / α, β₂, ε, weight decay (L2), L1, step count, decay kind and
its two constants, Nesterov flag, the current learning rate, the form flag
(``form="tf1"``: TensorFlow 1's update rule, see :class:`Adam` and :class:`RMSProp`)
and, for TF 1's Adam, β₁ᵗ and β₂ᵗ kept as running products as TF 1 keeps them.

:mod:`nbbp.tf1`'s ``tf.train`` optimizers are these, with TF 1's defaults:
``GradientDescentOptimizer`` is :class:`SGD`, ``MomentumOptimizer`` is
:class:`TF1Momentum` (SGD in TF 1's form), ``AdagradOptimizer`` is :class:`Adagrad` with
``eps=0`` and ``initial_accumulator=0.1``, ``AdamOptimizer`` and
``RMSPropOptimizer`` are :class:`Adam` and :class:`RMSProp` with ``form="tf1"``.

>>> import nbbp
>>> nbbp.optim.Adam(lr=0.01)
Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

# Kernel opcodes of the update instructions and the hyperparameter layout: part of
# the engine's instruction set, defined once in nbbp.core.isa.
from ..core.engine import ALIGN
from ..core.isa import (  # noqa: F401
    CAST,
    H_B1,
    H_B2,
    H_DA,
    H_DB,
    H_DECAY,
    H_EPS,
    H_FORM,
    H_L1,
    H_LR,
    H_LRT,
    H_NESTEROV,
    H_P1,
    H_P2,
    H_T,
    H_WD,
    N_HYPER,
    S_F64,
    STORAGE,
    STORAGES,
    TICK,
)
from ..core.isa import UPD_ADAGRAD as ADAGRAD_CODE
from ..core.isa import UPD_ADAM as ADAM_CODE
from ..core.isa import UPD_RMSPROP as RMSPROP_CODE
from ..core.isa import UPD_SGD as SGD_CODE
from ..errors import NbbpError

FORMS = {"torch": 0, "tf1": 1}
_CHECKED = ("lr", "weight_decay", "l1")      # finite and ≥ 0, unless built unchecked

DECAYS = {"none": 0, "exponential": 1, "inverse_time": 2, "step": 3}


@dataclass(frozen=True)
class Decay:
    """Learning-rate decay: ``exponential`` (lr·γᵗ), ``inverse_time`` (lr / (1 + k·t))
    or ``step`` (lr·γ^⌊t / every⌋), with t the number of steps taken before this one."""

    kind: str = "none"
    rate: float = 0.0
    every: int = 1

    def __post_init__(self) -> None:
        if self.kind not in DECAYS:
            from ..errors import suggest
            raise NbbpError(f"unknown decay {self.kind!r}; " + suggest(self.kind, DECAYS, "decay"))
        if self.kind == "step" and self.every < 1:
            raise NbbpError("Decay('step', rate, every): every must be ≥ 1 step")

    def lr_at(self, lr: float, t: int) -> float:
        """The learning rate of step ``t`` (1-based)."""
        k = t - 1
        if self.kind == "exponential":
            return lr * self.rate ** k
        if self.kind == "inverse_time":
            return lr / (1.0 + self.rate * k)
        if self.kind == "step":
            return lr * self.rate ** (k // self.every)
        return lr


@dataclass
class Optimizer:
    """Base class: hyperparameters shared by every rule."""

    lr: float = 0.01
    weight_decay: float = 0.0
    l1: float = 0.0
    decay: Decay = field(default_factory=Decay)

    code = SGD_CODE
    n_state = 0

    def __post_init__(self) -> None:
        for name in _CHECKED:
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating)) or not np.isfinite(v) or v < 0:
                raise NbbpError(f"{type(self).__name__}({name}={v!r}): needs a finite number "
                                "≥ 0")
        if isinstance(self.decay, str):
            self.decay = Decay(self.decay)

    @classmethod
    def unchecked(cls, **kw: Any) -> Optimizer:
        """The optimizer with any numbers for ``lr``, ``weight_decay`` and ``l1``, as
        TF 1 takes them (a negative learning rate ascends, a nan one gives nan):
        :mod:`nbbp.tf1`'s optimizers are built this way."""
        opt = cls(**{k: v for k, v in kw.items() if k not in _CHECKED})
        for k in _CHECKED:
            if k in kw:
                setattr(opt, k, kw[k])
        return opt

    def hyper(self) -> np.ndarray:
        h = np.zeros(N_HYPER)
        h[H_LR], h[H_WD], h[H_L1] = self.lr, self.weight_decay, self.l1
        h[H_DECAY], h[H_DA], h[H_DB] = DECAYS[self.decay.kind], self.decay.rate, self.decay.every
        h[H_LRT] = self.lr
        h[H_P1] = h[H_P2] = 1.0
        return h

    def _grad(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g + self.weight_decay * p + self.l1 * np.sign(p)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)}" for k in ("weight_decay", "l1")
                        if getattr(self, k))
        if self.decay.kind != "none":
            extra += f", decay={self.decay}"
        return f"{type(self).__name__}(lr={self.lr}{self._own()}{extra})"

    def _own(self) -> str:
        return ""


@dataclass(repr=False)
class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum — PyTorch's rule:
    ``buf = μ·buf + g``; ``p -= lr·(g + μ·buf if nesterov else buf)``.

    :class:`TF1Momentum` is the same rule in TensorFlow 1's form.
    """

    momentum: float = 0.0
    nesterov: bool = False
    form: ClassVar[str] = "torch"

    code = SGD_CODE
    n_state = 1

    def hyper(self) -> np.ndarray:
        h = super().hyper()
        h[H_B1], h[H_NESTEROV] = self.momentum, float(self.nesterov)
        h[H_FORM] = FORMS[self.form]
        return h

    def _own(self) -> str:
        return (f", momentum={self.momentum}" if self.momentum else "") + (
            ", nesterov=True" if self.nesterov else "")

    def step_numpy(self, p, g, state, t):
        g = self._grad(p, g)
        lr = self.decay.lr_at(self.lr, t)
        if self.form == "tf1":
            state[0][...] = state[0] * self.momentum + g
            if self.nesterov:
                return p - (g * lr + state[0] * self.momentum * lr)
            return p - state[0] * lr
        if self.momentum:
            state[0][...] = self.momentum * state[0] + g
            g = g + self.momentum * state[0] if self.nesterov else state[0]
        return p - lr * g


@dataclass(repr=False)
class TF1Momentum(SGD):
    """:class:`SGD` in TensorFlow 1's form (ApplyMomentum): ``buf = buf·μ + g``,
    ``p -= buf·lr``, or with Nesterov ``p -= g·lr + buf·μ·lr`` — the same maths in
    TF 1's order of operations, and the buffer is kept even when μ = 0. The form is
    the class (SGD's fields are unchanged, so SGD settings travel as before)."""

    form: ClassVar[str] = "tf1"


@dataclass(repr=False)
class Adagrad(Optimizer):
    """Adagrad (PyTorch): ``s += g²``; ``p -= lr·g / (√s + ε)``."""

    eps: float = 1e-10
    initial_accumulator: float = 0.0

    code = ADAGRAD_CODE
    n_state = 1

    def hyper(self) -> np.ndarray:
        h = super().hyper()
        h[H_EPS] = self.eps
        return h

    def _own(self) -> str:
        return f", eps={self.eps}"

    def step_numpy(self, p, g, state, t):
        g = self._grad(p, g)
        state[0][...] = state[0] + g * g
        return p - self.decay.lr_at(self.lr, t) * g / (np.sqrt(state[0]) + self.eps)


@dataclass(repr=False)
class RMSProp(Optimizer):
    """RMSProp (PyTorch): ``s = α·s + (1−α)·g²``; with momentum μ
    ``buf = μ·buf + g/(√s+ε)``, ``p -= lr·buf``; else ``p -= lr·g/(√s+ε)``.

    ``form="tf1"``: TensorFlow 1's rule (α is TF's ``decay``): ``s += (g² − s)(1−α)``,
    ``buf = μ·buf + lr·g/√(s + ε)``, ``p -= buf`` — ε inside the root and the
    learning rate inside the momentum buffer (TF 1 also starts ``s`` at one: that is
    its slot's initial value, state rather than rule).
    """

    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    form: str = "torch"

    code = RMSPROP_CODE
    n_state = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_form(self)

    def hyper(self) -> np.ndarray:
        h = super().hyper()
        h[H_B1], h[H_B2], h[H_EPS] = self.momentum, self.alpha, self.eps
        h[H_FORM] = FORMS[self.form]
        return h

    def _own(self) -> str:
        return f", alpha={self.alpha}, eps={self.eps}" + (
            f", momentum={self.momentum}" if self.momentum else "") + _form_repr(self)

    def step_numpy(self, p, g, state, t):
        g = self._grad(p, g)
        lr = self.decay.lr_at(self.lr, t)
        if self.form == "tf1":
            state[0][...] = state[0] + (g * g - state[0]) * (1.0 - self.alpha)
            state[1][...] = state[1] * self.momentum + g * lr / np.sqrt(state[0] + self.eps)
            return p - state[1]
        state[0][...] = self.alpha * state[0] + (1 - self.alpha) * g * g
        step = g / (np.sqrt(state[0]) + self.eps)
        if self.momentum:
            state[1][...] = self.momentum * state[1] + step
            step = state[1]
        return p - lr * step


@dataclass(repr=False)
class Adam(Optimizer):
    """Adam (PyTorch): ``m = β₁m + (1−β₁)g``, ``v = β₂v + (1−β₂)g²``,
    ``p -= lr·m̂ / (√v̂ + ε)`` with the bias corrections ``m̂ = m/(1−β₁ᵗ)``,
    ``v̂ = v/(1−β₂ᵗ)``.

    ``form="tf1"``: TensorFlow 1's rule, with ε added *after* the bias correction
    is folded into the step size ("epsilon hat"): ``lrₜ = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)``,
    ``m += (g − m)(1−β₁)``, ``v += (g² − v)(1−β₂)``, ``p -= lrₜ·m/(√v + ε)``, with
    β₁ᵗ, β₂ᵗ running products (``beta1_power``); ``nesterov=True`` (tf1 form only)
    steps along ``(1−β₁)g + β₁m`` instead of ``m``.
    """

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    form: str = "torch"
    nesterov: bool = False

    code = ADAM_CODE
    n_state = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_form(self)
        if self.nesterov and self.form != "tf1":
            raise NbbpError("Adam(nesterov=True) is TF 1's Nesterov Adam: it needs form='tf1'")

    def hyper(self) -> np.ndarray:
        h = super().hyper()
        h[H_B1], h[H_B2], h[H_EPS] = self.betas[0], self.betas[1], self.eps
        h[H_FORM], h[H_NESTEROV] = FORMS[self.form], float(self.nesterov)
        h[H_P1], h[H_P2] = self.betas
        return h

    def _own(self) -> str:
        return f", betas={tuple(self.betas)}, eps={self.eps}" + _form_repr(self) + (
            ", nesterov=True" if self.nesterov else "")

    def step_numpy(self, p, g, state, t, powers: tuple[float, float] | None = None):
        """One step. ``powers`` (tf1 form): β₁ᵗ and β₂ᵗ as TF 1's ``beta1_power``
        and ``beta2_power`` hold them; by default ``β**t``, which agrees with the
        kernel's running products to rounding."""
        b1, b2 = self.betas
        g = self._grad(p, g)
        if self.form == "tf1":
            p1, p2 = (b1 ** t, b2 ** t) if powers is None else powers
            lr_t = self.decay.lr_at(self.lr, t) * np.sqrt(1.0 - p2) / (1.0 - p1)
            state[0][...] = state[0] + (g - state[0]) * (1.0 - b1)
            state[1][...] = state[1] + (g * g - state[1]) * (1.0 - b2)
            m = g * (1.0 - b1) + b1 * state[0] if self.nesterov else state[0]
            return p - (m * lr_t) / (np.sqrt(state[1]) + self.eps)
        state[0][...] = b1 * state[0] + (1 - b1) * g
        state[1][...] = b2 * state[1] + (1 - b2) * g * g
        mhat = state[0] / (1 - b1 ** t)
        vhat = state[1] / (1 - b2 ** t)
        return p - self.decay.lr_at(self.lr, t) * mhat / (np.sqrt(vhat) + self.eps)


def _check_form(opt: Optimizer) -> None:
    if opt.form not in FORMS:
        from ..errors import suggest
        raise NbbpError(f"{type(opt).__name__}(form={opt.form!r}): unknown form; "
                        + suggest(str(opt.form), FORMS, "form"))


def _form_repr(opt: Optimizer) -> str:
    return f", form={opt.form!r}" if opt.form != "torch" else ""


def update_rows(optimizer: Optimizer | type[Optimizer],
                params: list[tuple[int, int | None, int, int, int]], ends: list[int]
                ) -> tuple[list[list[int]], int, list[tuple[int, int, int, int]], list[int]]:
    """The compiled update of one step, in the memory after ``ends`` (one end per storage
    class): instructions for :func:`nbbp.core.engine.lower`'s ``extra`` — a ``TICK``,
    then per parameter a ``CAST`` of its gradient when that is of another storage, and
    its update — and where their memory goes.

    ``params`` holds ``(storage, parameter offset, gradient offset, gradient storage,
    size)``; a parameter offset of None places the parameter too (a TF 1 session copies
    its variables in). Returns the instructions, the hyperparameter block's offset in the
    float64 storage (write :meth:`Optimizer.hyper` there), ``(storage, parameter offset,
    state offset, size)`` per parameter, and the new ends.
    """
    pos = list(ends)

    def place(c: int, size: int) -> int:
        step = ALIGN // np.dtype(STORAGES[c]).itemsize
        pos[c] = -(-pos[c] // step) * step
        pos[c] += size
        return pos[c] - size

    h_at = place(S_F64, N_HYPER)
    rows = [[TICK, h_at] + [0] * (STORAGE - 2) + [S_F64]]
    placed = []
    n_state = max(optimizer.n_state, 2)
    for c, p, g_at, g_c, n in params:
        p = place(c, n) if p is None else p
        if g_c != c:                  # e.g. a float32 param whose gradient came out float64
            cast_at = place(c, n)
            rows.append([CAST, cast_at, g_at, g_c, 0, 0, 0, n, 0, c])
            g_at = cast_at
        st = place(c, n_state * n)
        rows.append([optimizer.code, p, g_at, st, h_at, 0, 0, n, 0, c])
        placed.append((c, p, st, n))
    return rows, h_at, placed, pos


OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "adagrad": Adagrad, "rmsprop": RMSProp,
              "adam": Adam}


def get(optimizer: Optimizer | str | None, lr: float | None = None) -> Optimizer:
    """An optimizer from an instance or a name (``"adam"``, ``"sgd"``, …)."""
    if optimizer is None:
        optimizer = "sgd"
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        kw = {} if lr is None else {"lr": lr}
        if optimizer.lower() == "momentum":
            kw["momentum"] = 0.9
        return OPTIMIZERS[optimizer.lower()](**kw)
    from ..errors import suggest
    raise NbbpError(f"unknown optimizer {optimizer!r}; "
                    + suggest(str(optimizer), OPTIMIZERS, "optimizer")
                    + " Or pass one, e.g. nbbp.optim.Adam(lr=0.01).")
