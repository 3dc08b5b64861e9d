"""The ``%%bpgraph`` cell magic: type a model into a cell, see backpropagation on it.

``%load_ext nbbp`` registers it. The cell body is the source of :func:`nbbp.build`
with the notebook's names in reach; afterwards ``NAME`` holds the model and the cell
shows its picture. A mistake in the cell (a bad option, an error in the body, a shape
mismatch, an unknown op) is reported as a one-line ``UsageError`` pointing at the cell
line, and leaves the previous value of ``NAME`` untouched. Defaults are settable with
``%config BpgraphMagics.<option> = value``.

IPython is imported only when this module is, i.e. by ``%load_ext nbbp``.
"""

from __future__ import annotations

import argparse
import contextlib
import keyword
import os
import re
import sys
import threading
import time
import weakref
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, CaselessStrEnum, Int, Unicode

from .errors import NbbpError, closest
from .view import dot, options

_BOOL = argparse.BooleanOptionalAction


class Picture:
    """What ``%%bpgraph`` returns: a model together with the options to draw it.

    Displays itself as the picture (SVG), or as a text listing when no renderer works.
    """

    def __init__(self, model: Any, **opts: Any) -> None:
        self.model, self.opts = model, opts

    def to_dot(self) -> str:
        return dot.to_dot(self.model, **self.opts)

    def svg(self) -> str:
        _RENDERER_CHECK.join()
        return dot.svg(self.model, **self.opts)

    def save(self, path: str) -> Any:
        _RENDERER_CHECK.join()
        return dot.save(self.model, path, **self.opts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        _RENDERER_CHECK.join()      # the check %load_ext started: not a second dot run
        return dot.mimebundle(self.model, include, exclude, **self.opts)

    def __repr__(self) -> str:
        return f"<Picture of {self.model!r}>"


def _usage(err: NbbpError, name: str, offset: int = 1) -> UsageError:
    """An nbbp error as a UsageError located in the cell (line 1 is the %%bpgraph line)."""
    if err.line is None:
        return UsageError(f"%%bpgraph {name}: {err.message}")
    where = f"cell line {err.line + offset}" + (f", col {err.col + 1}"
                                                if err.col is not None else "")
    text = f"{where}: {err.message}"
    if err.source_line is not None:
        src = err.source_line.rstrip()
        text += f"\n    {src}\n    " + (" " * err.col + "^" if err.col is not None
                                        else "^" * max(1, len(src.strip())))
    return UsageError(text)


@magics_class
class BpgraphMagics(Magics):
    """The ``%%bpgraph`` magic; its traits are the defaults of the options."""

    rankdir = CaselessStrEnum(("auto", "LR", "TB"), default_value="auto", help=(
        "Layout direction: LR (left to right), TB (top to bottom), or auto (LR for "
        "graphs up to 8 ranks deep, TB for deeper ones)")).tag(config=True)
    precision = Int(4, help="Significant digits of the numbers shown").tag(config=True)
    backward = Bool(False, help="Also draw the backward pass (the gradient nodes)"
                    ).tag(config=True)
    grad = Bool(True, help="Show gradients (False: values only)").tag(config=True)
    formulas = Bool(True, help="Show each op's local derivative formula").tag(config=True)
    thumbnails = Bool(True, help="Draw 2-D and larger tensors as heat-map pictures"
                      ).tag(config=True)
    engine = CaselessStrEnum(("numba", "python"), default_value="numba",
                             help="Engine that computes values and gradients").tag(config=True)
    max_nodes = Int(150, help="Collapse scopes automatically above this many nodes "
                    "(0: never)").tag(config=True)
    renderer = Unicode("auto", help=(
        "Graphviz program: auto ($NBBP_DOT, dot on the PATH, then graphviz-pure), dot, "
        "graphviz-pure (byte-identical SVG on every machine), none (text only), or a "
        "path")).tag(config=True)
    tracebacks = Bool(False, help=(
        "Show the full traceback of nbbp's errors raised after the cell (m.run, m.fit, "
        "nbbp.load, …) instead of one short message; %tb shows it once")).tag(config=True)

    @magic_arguments(name="%bpgraph")     # the usage line then reads %%bpgraph
    @argument("name", help="the notebook variable that receives the model")
    @argument("--output", metavar="NODE",
              help="the output node (default: the last assigned node)")
    @argument("--rankdir", metavar="LR|TB|auto",
              help="layout direction (default: auto)")
    @argument("--precision", type=int, metavar="N",
              help="significant digits of the numbers shown (default: 4)")
    @argument("--backward", action=_BOOL, default=None,
              help="also draw the backward pass: the gradient nodes that compute each "
                   "gradient, run by the same engine (default: off)")
    @argument("--collapse", nargs="+", action="extend", metavar="SCOPE",
              help="draw these scopes as one node each (parameter count, value and "
                   "gradient norms)")
    @argument("--grad", action=_BOOL, default=None,
              help="show gradients on nodes and edges; --no-grad shows values only")
    @argument("--formulas", action=_BOOL, default=None,
              help="show each op's local derivative (default: on)")
    @argument("--thumbnails", action=_BOOL, default=None,
              help="draw 2-D and larger tensors as heat-map pictures; --no-thumbnails "
                   "shows their mean ± sd and norm instead (default: on)")
    @argument("--engine", metavar="numba|python",
              help="compute with the compiled engine (numba) or the NumPy reference "
                   "(python)")
    @argument("--dtype", metavar="float64|float32",
              help="the dtype of the cell's leaves and number constants (default float64); "
                   "a float32 model computes and trains in float32")
    @argument("--max-nodes", type=int, metavar="N",
              help="collapse scopes automatically above N drawn nodes; 0 draws "
                   "everything (default: 150)")
    @argument("--renderer", metavar="PROGRAM",
              help="auto, dot, graphviz-pure, none, or a path (default: auto)")
    @argument("--sliders", nargs="*", metavar="NAME[=(MIN,MAX[,STEP])]",
              help="show sliders for these params and inputs (default: every scalar one, "
                   "and an element picker for tensor params) above a live picture, with a "
                   "step-through of the backward pass; see docs/widgets.md")
    @argument("--train", action="store_true", default=False,
              help="show a training panel: optimizer, learning rate, Step / Train N / "
                   "Pause / Reset, loss curve, decision boundary")
    @cell_magic
    def bpgraph(self, line: str, cell: str) -> Picture:
        """Build a model from the cell and show backpropagation on its graph.

        The cell body is Python run in a graph-building context: ``param``,
        ``input``, ``const``, ``scope``, every op (``tanh``, ``relu``, ``matmul``,
        ``mean``, ...), the initialisers ``randn``, ``zeros``, ``ones``, ``uniform``
        and the notebook's own variables are in reach. Each assignment names the node
        it binds. After the cell, NAME holds the model (``NAME.value``,
        ``NAME.grads``, ``NAME.set(...)``, ``NAME.run(...)``) and the cell shows its
        graph: every node with its value and gradient, every edge with the part of
        the gradient that flows back along it.

        Examples
        --------
        The article's example (∂f/∂x = 6 + 6 = 12, ∂f/∂y = 9 + 1 = 10)::

            %%bpgraph f
            x = param(3.0)
            y = param(2.0)
            f = x*x*y + y + 1

        A network on notebook data, with the backward pass drawn, one scope collapsed::

            %%bpgraph mlp --collapse hidden --precision 3
            x = input(X); y = input(Y)
            with scope("hidden"):
                W1 = param(randn(2, 16) * 0.5); b1 = param(zeros(16))
                h = tanh(x @ W1 + b1)
            s = h @ param(randn(16, 1))
            loss = mean(relu(1 - y * s))

        Sliders over a live picture, with a step-through of the backward pass
        (``--train`` shows a training panel instead; both together share one
        picture; see docs/widgets.md)::

            %%bpgraph neuron --sliders w1=(-4, 4, 0.5) b
            x1 = input(2.0); w1 = param(-3.0); b = param(6.88)
            o = tanh(x1*w1 + b)

        Defaults for every option: ``%config BpgraphMagics.precision = 6``,
        ``%config BpgraphMagics.renderer = "graphviz-pure"`` (byte-stable SVG for
        nbval), ``%config BpgraphMagics.backward = True``. ``%config BpgraphMagics``
        lists them. The picture also comes from ``nbbp.view.render.svg(NAME, ...)``,
        ``nbbp.view.render.save(NAME, "graph.svg" | ".png" | ".dot", ...)`` and
        ``nbbp.view.render.to_dot(NAME, ...)``. See docs/bpgraph.md.
        """
        # slider ranges may be written with spaces: --sliders x=(-3, 3, 0.1)
        line = re.sub(r"\(([^)]*)\)", lambda m: "(" + m.group(1).replace(" ", "") + ")", line)
        try:
            args = parse_argstring(self.bpgraph, line)
        except UsageError as err:
            raise _option_error(self.bpgraph, line, err) from None
        name = args.name
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"%%bpgraph {name}: the model's name must be a Python variable "
                             "name, e.g. %%bpgraph f")
        engine = (args.engine or self.engine).lower()
        if engine not in ("numba", "python"):
            raise UsageError(f"--engine {args.engine}: use numba (compiled) or python "
                             "(the NumPy reference)")
        opts = dict(
            rankdir=args.rankdir or self.rankdir,
            precision=self.precision if args.precision is None else args.precision,
            backward=self.backward if args.backward is None else args.backward,
            grad=self.grad if args.grad is None else args.grad,
            formulas=self.formulas if args.formulas is None else args.formulas,
            thumbnails=self.thumbnails if args.thumbnails is None else args.thumbnails,
            collapse=tuple(args.collapse or ()),
            max_nodes=self.max_nodes if args.max_nodes is None else args.max_nodes,
            renderer=args.renderer or self.renderer)
        try:
            options.options(None, **opts)          # check the options before building
        except NbbpError as err:
            raise UsageError(f"%%bpgraph {name}: {err.message}") from None
        if not cell.strip():
            raise UsageError(f"%%bpgraph {name}: the cell is empty; write the model below "
                             "the %%bpgraph line, e.g.\n    x = param(3.0)\n    f = x * x")

        from .build import build
        from .core.engine import stand_in
        try:
            # a small cell computes on the NumPy reference while the kernels load (not
            # a training panel: it trains in the compiled loop); the next cell switches
            with contextlib.nullcontext() if args.train else stand_in():
                model = build(cell, output=args.output, namespace=self.shell.user_ns,
                              engine=engine, name=name, first_line=2, dtype=args.dtype)
            options.check(model, **opts)           # e.g. --collapse names a real scope
        except NbbpError as err:
            raise _usage(err, name) from None
        if model.compiled.engine != model.engine:
            _STANDING_IN.add(model)
        options.remember(model, **opts)
        if args.sliders is not None or args.train:
            from . import widgets
            try:
                shown = widgets.for_magic(model, args.sliders, args.train)
            except NbbpError as err:
                raise UsageError(f"%%bpgraph {name}: {err.message}") from None
            self.shell.user_ns[name] = model
            return shown
        self.shell.user_ns[name] = model
        return Picture(model, **opts)


def _option_error(magic: Any, line: str, err: UsageError) -> UsageError:
    """argparse's complaint about the ``%%bpgraph`` line, with the valid options, the
    closest one to a misspelt option, and where the manual is."""
    valid = sorted({o for o in magic.parser._option_string_actions if o.startswith("--")}
                   - {"--help"})
    shown = [o for o in valid if not o.startswith("--no-")]
    given = re.findall(r"(?<!\S)(--?[\w-]+)", line)
    unknown = [o for o in given if o not in valid]
    hint = ""
    if unknown:
        close = closest(unknown[0], valid)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
    text = str(err).strip().splitlines()[-1]
    return UsageError(f"%%bpgraph: {text}; {hint}options: {' '.join(shown)} (and --no-… "
                      "for the on/off ones); %%bpgraph? explains each")


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _in_nbbp(tb: Any) -> bool:
    """Whether the traceback runs through nbbp's own code."""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
            return True
        tb = tb.tb_next
    return False


def short_message(etype: type, value: BaseException) -> list[str]:
    """One to three lines for an nbbp error raised after the cell: the message (with
    the model source line it points at) and where the full traceback is."""
    if isinstance(value, KeyboardInterrupt):
        head = ("KeyboardInterrupt: stopped inside nbbp; the model keeps the values of "
                "its last completed step")
    else:
        where = ""
        if value.line is not None:
            src = (value.source_line or "").strip()
            where = f"\n    model source line {value.line}: {src}" if src else \
                f"\n    model source line {value.line}"
        head = f"{etype.__name__}: {value.message}{where}"
    return [head + "\n(full traceback: %tb; always: %config BpgraphMagics.tracebacks = True)"]


def _custom_exc(shell: Any, etype: type, value: BaseException, tb: Any,
                tb_offset: int | None = None) -> list[str] | None:
    """IPython's handler for :class:`NbbpError` and KeyboardInterrupt: one short message,
    like ``UsageError``; ``%tb`` shows the full traceback (kept in ``sys.last_*``)."""
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    magics = shell.magics_manager.registry.get("BpgraphMagics")
    full = magics is not None and magics.tracebacks
    if full or (isinstance(value, KeyboardInterrupt) and not _in_nbbp(tb)):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None
    stb = short_message(etype, value)
    shell._showtraceback(etype, value, stb)
    return stb


def _empty_cell(lines: list[str]) -> list[str]:
    """Let a ``%%bpgraph NAME`` cell with no body at all reach the magic, which says
    what a cell should contain (IPython would stop it with a generic message)."""
    if lines and lines[0].lstrip().startswith("%%bpgraph") and \
            all(not x.strip() for x in lines[1:]):
        return [lines[0].rstrip("\n") + "\n", "\n"]
    return lines


# models of %%bpgraph cells computing on the NumPy reference while the kernels load
_STANDING_IN: weakref.WeakSet = weakref.WeakSet()


def finish_loading(*_: Any) -> None:
    """Before each cell (IPython's ``pre_run_cell`` event): switch the models that
    started on the NumPy reference while the compiled kernels loaded to the compiled
    engine (:meth:`nbbp.Model.finish_loading`), waiting for the kernels if they are
    still loading, so every later cell uses them compiled."""
    while _STANDING_IN:
        model = _STANDING_IN.pop()
        try:
            model.finish_loading()
        except Exception as exc:       # e.g. Numba failed to load: say so, in one line
            print(f"nbbp: model {model.name!r} keeps computing on the NumPy reference "
                  f"(engine='python'): the compiled engine did not load: {exc}",
                  file=sys.stderr)


def _check_renderer(choice: str) -> None:
    """Find (and try once) the Graphviz program the first picture will use; mostly
    waiting on a subprocess, so it costs the notebook's thread little."""
    from .view.graphviz import find_renderer
    find_renderer(choice)


class _Check:
    """The background renderer check: a picture waits for it (``join``) rather than
    running the same check again beside it."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    def start(self, choice: str) -> None:
        self.thread = threading.Thread(target=_check_renderer, args=(choice,), daemon=True,
                                       name="nbbp-renderer")
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()


_RENDERER_CHECK = _Check()


IDLE_SECONDS = 0.2    # the kernels' background load waits for this long without a cell
# whether a cell runs, and when the last one ended (IPython's pre/post_run_cell events)
_CELLS = {"running": True, "ended": 0.0, "loaded": False}


def _cell_starts(*_: Any) -> None:
    _CELLS["running"] = True


def _cell_ends(*_: Any) -> None:
    _CELLS["running"], _CELLS["ended"] = False, time.monotonic()


def _preload_when_idle() -> None:
    """Load the kernels in the background once no cell has run for IDLE_SECONDS (as
    people type the next one). Importing Numba holds the GIL most of the time: loading
    while a cell runs slowed that cell about 2×. Cells that need the kernels before
    then load them themselves."""
    from .core.engine import preload

    def wait() -> None:
        while _CELLS["loaded"]:          # %unload_ext: give up
            if not _CELLS["running"] and time.monotonic() - _CELLS["ended"] >= IDLE_SECONDS:
                preload()
                return
            time.sleep(IDLE_SECONDS / 4)
    threading.Thread(target=wait, daemon=True, name="nbbp-idle").start()


_HOOKS = (("pre_run_cell", finish_loading), ("pre_run_cell", _cell_starts),
          ("post_run_cell", _cell_ends))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbbp``: register the ``%%bpgraph`` magic and the short display of
    nbbp's errors, check the Graphviz program, and load the compiled kernels in the
    background once the notebook is idle; a first small cell run before they are
    ready computes on the NumPy reference, and switches to the compiled engine before
    the next cell."""
    ipython.register_magics(BpgraphMagics)
    ipython.set_custom_exc((NbbpError, KeyboardInterrupt), _custom_exc)
    if _empty_cell not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(_empty_cell)
    for event, hook in _HOOKS:
        if hook not in ipython.events.callbacks[event]:
            ipython.events.register(event, hook)
    _RENDERER_CHECK.start(ipython.magics_manager.registry["BpgraphMagics"].renderer)
    _CELLS.update(running=True, loaded=True)    # %load_ext runs in a cell
    _preload_when_idle()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbbp``: errors show full tracebacks again (and models still on
    the NumPy reference switch to the compiled engine now)."""
    finish_loading()
    if ipython.custom_exceptions == (NbbpError, KeyboardInterrupt):
        ipython.set_custom_exc((), None)
    if _empty_cell in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(_empty_cell)
    for event, hook in _HOOKS:
        if hook in ipython.events.callbacks[event]:
            ipython.events.unregister(event, hook)
    _CELLS["loaded"] = False            # a waiting background load gives up
