"""Running an ``ApplyGradients`` op: nbbp's compiled optimizer update in a session.

The session compiles the gradients as part of its plan; :class:`Update` adds the
optimizer's update instructions (:func:`nbbp.train.optim.update_rows`, run by the
kernel that runs nbbp's own training loop) in the arena after the plan's graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.engine import Arena, Layout, kernel
from ..core.engine import lower as lower_program
from ..core.graph import Node
from ..core.isa import STORAGE_OF
from ..train import optim
from ._core import Operation
from ._types import carrier
from ._variables import Variable
from .errors import InvalidArgumentError
from .train import Optimizer


class InArena:
    """A variable's (or slot's) value in a session after a compiled update: the row of
    the plan's arena that holds it, made into an array only when something reads it
    (``Session._read``), so a training step copies nothing out. Only that plan's runs
    write the row, and each first copies in the session's value if the row does not
    hold it (its ``held`` dict), so the row keeps the value until then."""

    __slots__ = ("row", "shape")

    def __init__(self, row: np.ndarray, shape: tuple[int, ...]) -> None:
        self.row, self.shape = row, shape

    def array(self) -> np.ndarray:
        return self.row.reshape(self.shape).copy()


class Update:
    """One ``ApplyGradients`` op in a session's plan: the optimizer's compiled update
    instructions (the rows :func:`nbbp.train.optim.update_rows` writes, one per
    variable, in the variable's storage: a float32 variable updates in float32, as
    :mod:`nbbp.train.loop` trains float32 models) over the plan's arena, in the
    memory after what the plan's graph uses (from ``ends``, one end per storage).

    Each run copies the session's values of the variables and their slots in (unless
    their rows hold them already), runs the update (the kernel; ``step_numpy`` on the
    python engine) and leaves the new values in the session as :class:`InArena`: the
    rows they are in, copied out only when read.
    """

    def __init__(self, op: Operation, layout: Layout, grads: list[Node],
                 hyper: dict[str, Node], ends: list[int], engine: str,
                 var_nodes: dict[Variable, Node], leaf_held: dict) -> None:
        a = op.attrs
        self.op, self.engine, self.layout = op, engine, layout
        self.opt: Optimizer = a["optimizer"]
        self.vars: list[Variable] = a["vars"]
        self.grads = grads
        self.hyper_nodes = hyper                 # fed or computed hyperparameters
        self.slots = [self.opt._slot_list(var) for var in self.vars]
        self.f32 = all(v.dtype.name == "float32" for v in self.vars)
        self.rule = None if hyper else self.opt._rule(a["hyper"])
        self.h = None if self.rule is None else self._block(self.rule, self.f32)
        self.run = kernel("run") if engine == "numba" else None
        self._cached: tuple | None = None
        self.held: dict = {}       # the value (array object) each row of its own holds
        self.leaf_held = leaf_held  # the same for the plan's variable slots
        for var, g in zip(self.vars, grads):
            if g.shape != var._shape:
                raise InvalidArgumentError(
                    f"apply_gradients: the gradient {g.name} has shape {g.shape} but "
                    f"variable {var.op.name} has {var._shape}; give each variable a "
                    "gradient of its own shape")
        # a variable the plan's graph reads is updated in its own slot there (the run
        # wrote its value); others get a row of their own
        self.in_place = [var in var_nodes for var in self.vars]
        params = [(STORAGE_OF[carrier(var.dtype)],
                   int(layout.offsets[var_nodes[var].id]) if var in var_nodes else None,
                   int(layout.offsets[g.id]), int(layout.cls[g.id]), g.size)
                  for var, g in zip(self.vars, grads)]
        rows, self.h_at, self.at, self.ends = optim.update_rows(self.opt._rule_class, params,
                                                                list(ends))
        self.code, _ = lower_program(layout, [], extra=rows)
        self.n = len(rows)

    def _rows(self, store: Arena) -> list:
        """(variable or slot, flat view of its row in ``store``, the dict saying which
        value that row holds, shape) for every variable and slot — made once per arena.
        A variable updated in place shares the plan's dict for its graph slot."""
        if self._cached is None or self._cached[0] is not store:
            rows = []
            for var, slots, (c, p, s, n), in_place in zip(self.vars, self.slots, self.at,
                                                          self.in_place):
                arena = store.stores[c]
                rows.append((var, arena[p:p + n], self.leaf_held if in_place else self.held,
                             var._shape))
                rows += [(slot, arena[s + k * n:s + (k + 1) * n], self.held, var._shape)
                         for k, slot in enumerate(slots)]
            self._cached = (store, rows)
        return self._cached[1]

    def apply(self, session: Any, store: Arena) -> None:
        """One step: the session's values of the variables and slots in (unless their
        rows hold them already), the update, the new values left in their rows."""
        opt = self.opt
        f64 = store.f64            # the hyperparameters are float64; values per storage
        hyper = self.op.attrs["hyper"]
        if self.hyper_nodes:
            hyper = dict(hyper, **{k: float(self.layout.read(store, n))
                                   for k, n in self.hyper_nodes.items()})
        rule = self.rule or opt._rule(hyper)
        h = self._block(rule, self.f32) if self.h is None else self.h
        rows = self._rows(store)
        values = session._values
        for v, row, held, _ in rows:
            value = values.get(v)
            if value is None or held.get(v) is not value:
                value = session._read(v)          # raises for an uninitialised one
                row[:] = value.ravel()
                held[v] = value
        powers = opt._powers(session)
        if self.f32 and powers is not None:     # TF casts them to the variables' dtype
            powers = tuple(float(np.float32(x)) for x in powers)
        f64[self.h_at:self.h_at + optim.N_HYPER] = h
        if powers is not None:
            f64[self.h_at + optim.H_P1], f64[self.h_at + optim.H_P2] = powers
        if self.run is not None:
            self.run(self.code, store.f64, store.f32, 0, self.n, 2)
        else:
            kw = {} if powers is None else {"powers": powers}
            for var, g, (c, p, s, n) in zip(self.vars, self.grads, self.at):
                arena, shape = store.stores[c], var._shape
                state = [arena[s + k * n:s + (k + 1) * n].reshape(shape) for k in range(2)]
                grad = self.layout.view(store, g).astype(arena.dtype)
                arena[p:p + n] = np.ravel(rule.step_numpy(
                    arena[p:p + n].reshape(shape), grad, state, 1, **kw))
        for v, row, held, shape in rows:    # the update keeps each dtype and shape
            values[v] = held[v] = InArena(row, shape)
        opt._finish(session, hyper)
        gs = self.op.attrs["global_step"]
        if gs is not None:
            session._store(gs, session._read(gs) + 1, "global_step")

    @staticmethod
    def _block(rule: optim.Optimizer, f32: bool) -> np.ndarray:
        """The hyperparameter block of one step; every step is TF's first (t = 1), as
        its slots and ``beta*_power`` variables carry the rest. For float32 variables
        the values are rounded to float32, as TF casts them to the variables' dtype."""
        h = rule.hyper()
        h[optim.H_T] = 0.0
        if f32:
            h = h.astype(np.float32).astype(np.float64)
        return h
