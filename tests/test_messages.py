"""Every mistake gets one clear message: nbbp's errors raised after the cell show as one
to three lines in IPython (full traceback one ``%tb`` away, or always with
``%config BpgraphMagics.tracebacks = True``), plain Python keeps its tracebacks, and
the messages name the op, its signature, the line, the nearest names, the fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from IPython.testing import globalipapp

import nbbp
from nbbp.train.loop import TrainLoop

ARTICLE = "x = param(3.0)\ny = param(2.0)\nf = x*x*y + y + 1"
HINT = "(full traceback: %tb; always: %config BpgraphMagics.tracebacks = True)"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ip():
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()   # one per process
    shell.run_line_magic("load_ext", "nbbp")
    return shell


@pytest.fixture(autouse=True)
def article(ip):
    ip.run_line_magic("config", "BpgraphMagics.engine = 'python'")
    ip.run_cell("import nbbp")
    ip.run_cell(f"%%bpgraph f\n{ARTICLE}")
    yield
    ip.run_line_magic("config", "BpgraphMagics.tracebacks = False")
    ip.run_line_magic("config", "BpgraphMagics.engine = 'numba'")


def output(ip, capsys, code: str) -> list[str]:
    capsys.readouterr()
    result = ip.run_cell(code)
    out = capsys.readouterr()
    lines = [x for x in (out.out + out.err).splitlines() if x.strip()]
    assert result.success is False or not lines or "Error" not in lines[0]
    return lines


def short(ip, capsys, code: str, *parts: str) -> list[str]:
    """The output of ``code``: one to three lines, no traceback, holding ``parts``."""
    lines = output(ip, capsys, code)
    text = "\n".join(lines)
    assert 1 <= len(lines) <= 3, text
    assert "Traceback" not in text and "File " not in text and "----" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"
    return lines


# -- errors after the cell ---------------------------------------------------------------
def test_set_an_unknown_node(ip, capsys):
    lines = short(ip, capsys, "f.set(z=1.0)", "FeedError: model 'f' has no node named 'z'",
                  "Valid node names: add, const, f, mul, mul_1, x, y.")
    assert lines[-1] == HINT and len(lines) == 2


def test_run_with_a_wrong_feed(ip, capsys):
    short(ip, capsys, "f.run('f', feed={'q': 1.0})", "FeedError:", "'q'", HINT)


def test_fit_with_a_bad_setting(ip, capsys):
    short(ip, capsys, "f.fit(steps='x')", "fit(steps=...) needs a whole number ≥ 1", HINT)


def test_sliders_for_an_unknown_leaf(ip, capsys):
    short(ip, capsys, 'f.sliders("nope")', "no slider for 'nope'", "x, y", HINT)


def test_check_grads_mistakes_and_failures(ip, capsys):
    short(ip, capsys, "nbbp.check_grads(f, wrt=['q'])", "BuildError: no node named 'q'", HINT)
    ip.run_cell("%%bpgraph k\nx = param(0.0)\nk = relu(x)")
    short(ip, capsys, "nbbp.check_grads(k)", "GradientCheckError: ", HINT)


def test_load_a_missing_file(ip, capsys, tmp_path):
    path = tmp_path / "missing.nbbp"
    short(ip, capsys, f"nbbp.load({str(path)!r})", "FileFormatError:", "no such file", HINT)


def test_a_nan_after_the_cell_names_the_source_line(ip, capsys):
    lines = short(ip, capsys, "f.set(x=float('nan'))", "NumericError: mul(x, x) produced "
                  "nan from x = nan", "model source line 3: f = x*x*y + y + 1", HINT)
    assert len(lines) == 3


def test_tb_shows_the_full_traceback(ip, capsys):
    short(ip, capsys, "f.set(z=1.0)")
    lines = output(ip, capsys, "%tb")
    text = "\n".join(lines)
    assert "Traceback" in text and "nbbp/model.py" in text and len(lines) > 10
    assert text.rstrip().endswith("Valid node names: add, const, f, mul, mul_1, x, y.")


def test_config_switch_shows_every_traceback(ip, capsys):
    ip.run_line_magic("config", "BpgraphMagics.tracebacks = True")
    lines = output(ip, capsys, "f.set(z=1.0)")
    text = "\n".join(lines)
    assert "Traceback" in text and "nbbp/model.py" in text and HINT not in text


def test_other_errors_keep_their_tracebacks(ip, capsys):
    lines = output(ip, capsys, "1 / 0")
    assert "ZeroDivisionError" in "\n".join(lines) and "Traceback" in "\n".join(lines)


def test_keyboard_interrupt_in_fit_is_one_line(ip, capsys, monkeypatch):
    def interrupted(self, steps):
        raise KeyboardInterrupt
    monkeypatch.setattr(TrainLoop, "run", interrupted)
    lines = short(ip, capsys, "h = f.fit(steps=100, progress=False)",
                  "nbbp: training interrupted after 0 steps")
    assert len(lines) == 1


def test_keyboard_interrupt_inside_nbbp_is_short(ip, capsys, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(nbbp.Model, "compute", interrupted)
    # an int: set's Python path, which runs the model through compute (a float runs
    # it from C, nbbp.core._call)
    lines = short(ip, capsys, "f.set(x=1)", "KeyboardInterrupt: stopped inside nbbp", HINT)
    assert len(lines) == 2


def test_keyboard_interrupt_in_user_code_keeps_its_traceback(ip, capsys):
    text = "\n".join(output(ip, capsys, "raise KeyboardInterrupt"))
    assert "KeyboardInterrupt" in text and "stopped inside nbbp" not in text


def test_unload_restores_tracebacks(ip, capsys):
    ip.run_line_magic("unload_ext", "nbbp")
    try:
        assert ip.custom_exceptions == ()
        text = "\n".join(output(ip, capsys, "f.set(z=1.0)"))
        assert "Traceback" in text and "nbbp/model.py" in text
    finally:
        ip.run_line_magic("load_ext", "nbbp")
    assert ip.custom_exceptions == (nbbp.NbbpError, KeyboardInterrupt)


def test_plain_python_keeps_normal_tracebacks(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import nbbp
        f = nbbp.build({ARTICLE!r}, engine="python")
        f.set(z=1.0)
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr
    assert 'nbbp/model.py", line' in res.stderr
    assert res.stderr.rstrip().endswith("FeedError: model 'f' has no node named 'z'; "
                                        "Valid node names: add, const, f, mul, mul_1, x, y.")


# -- messages inside the cell ------------------------------------------------------------
def cell_error(ip, capsys, cell: str, *parts: str, line: str = "g") -> str:
    lines = output(ip, capsys, f"%%bpgraph {line}\n{cell}" if cell is not None
                   else f"%%bpgraph {line}")
    text = "\n".join(lines)
    assert text.startswith("UsageError: ") and "Traceback" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in:\n{text}"
    return text


def test_arity_mistake_names_the_op_and_its_signature(ip, capsys):
    cell_error(ip, capsys, "x = param(1.0)\ny = tanh(x, x)",
               "cell line 3, col 5: tanh takes 1 input, got 2: call it as "
               "tanh(x, name=None)", "name='...'", "y = tanh(x, x)")


def test_keyword_mistake_names_the_op_and_its_signature(ip, capsys):
    cell_error(ip, capsys, "x = param(1.0)\ny = tanh(x, axis=1)",
               "tanh: got an unexpected keyword argument 'axis'; call it as "
               "tanh(x, name=None)")
    cell_error(ip, capsys, "x = param(1.0)\ny = maximum(x)",
               "maximum: missing a required argument: 'b'; call it as maximum(a, b, "
               "name=None)")


def test_shadowed_op_names_the_line_that_rebound_it(ip, capsys):
    cell_error(ip, capsys, "tanh = param(1.0)\nx = param(2.0)\ny = tanh(x)",
               "cell line 4, col 5: tanh(...) no longer calls the op 'tanh': line 2 rebound "
               "the name (tanh = param(1.0)); give that variable another name, e.g. tanh_")


def test_unknown_name_suggests_the_closest_and_a_few_nearest(ip, capsys):
    text = cell_error(ip, capsys, "weight = param(1.0)\nx = input(2.0)\ny = wieght * x",
                      "cell line 4, col 5: unknown name 'wieght': did you mean 'weight'?",
                      "(nearest: ", "%%bpgraph? lists what a cell can use")
    nearest = text.split("(nearest: ")[1].split(")")[0].split(", ")
    assert 1 <= len(nearest) <= 4 and "softmax_cross_entropy" not in text


def test_empty_cell_says_what_a_cell_contains(ip, capsys):
    cell_error(ip, capsys, None, "%%bpgraph g: the cell is empty; write the model below the "
               "%%bpgraph line, e.g.", "x = param(3.0)")
    cell_error(ip, capsys, "   \n", "the cell is empty")


def test_unknown_option_lists_the_options_and_points_to_the_manual(ip, capsys):
    cell_error(ip, capsys, ARTICLE, "%%bpgraph: unrecognized arguments: --colour red; "
               "options: --backward --collapse --dtype --engine", "--rankdir --renderer",
               "%%bpgraph? explains each", line="g --colour red")
    cell_error(ip, capsys, ARTICLE, "did you mean --precision?", line="g --precison 3")


def test_nan_in_a_guarded_where_advises_guarding_the_input(ip, capsys):
    cell_error(ip, capsys, "x = param(-1.0)\ny = where(x > 0, sqrt(x), 0)",
               "cell line 3: sqrt(x) produced nan from x = -1 (square root; needs x ≥ 0)",
               "both branches are evaluated: guard the input of sqrt, e.g. "
               "sqrt(maximum(x, eps))")


def test_nan_in_the_backward_pass_names_the_users_node(ip, capsys):
    text = cell_error(ip, capsys, "x = param(0.0)\nr = sqrt(x)\ny = r * 2",
                      "cell line 3: the backward pass through node 'r' = sqrt(x) produced "
                      "inf at x = 0", "guard the input of sqrt, e.g. sqrt(maximum(x, eps))",
                      "    r = sqrt(x)")
    assert "grad/" not in text and "div" not in text


def test_nan_of_log_advises_a_guard():
    with pytest.raises(nbbp.NumericError, match=r"node 'y' = log\(x\) produced nan from "
                       r"x = -1 .*guard the input of log, e.g. log\(maximum\(x, eps\)\)"):
        nbbp.build("x = param(-1.0)\ny = log(x)", engine="python")


def test_division_by_zero():
    with pytest.raises(nbbp.NumericError, match=r"line 2: node 'y' = div\(1, x\) produced "
                       r"inf from x = 0; change the inputs or guard the input of div, e.g. "
                       r"1 / \(x \+ eps\)"):
        nbbp.build("x = param(0.0)\ny = 1 / x", engine="python")


def test_python_api_arity_mistake_says_the_name_is_text():
    with pytest.raises(nbbp.BuildError, match=r"node name must be text"):
        with nbbp.Graph():
            x = nbbp.param(1.0)
            nbbp.tanh(x, x)


def test_edit_distance_counts_a_swap_as_one():
    from nbbp.errors import closest, distance, nearest, suggest
    assert distance("wieght", "weight") == 1 and distance("abc", "abd") == 1
    assert distance("", "abc") == 3 and distance("Tanh", "tanh") == 0
    assert closest("wieght", ["weight", "where", "w"]) == ["weight"]
    assert nearest("tnah", ["tanh", "exp", "tan", "sqrt"], 2) == ["tanh", "tan"]
    text = suggest("qq", [f"n{i}" for i in range(40)], "node name")
    assert "Nearest node names: " in text and "(of 40)" in text and "n39" not in text
