"""End to end in a real browser: JupyterLab from this environment, on loopback, driven by
Playwright with Debian's Chromium (headless). One server start for the whole module.

The test opens ``tests/browser/live.ipynb``, runs it, moves a slider with the keyboard
and checks that the numbers in the displayed graph (live ``<text>`` elements of the
SVG inside an ipywidgets ``HTML``) changed to the expected values, steps the backward
pass to an edge and reads the chain rule written out for it, trains the moons MLP with
Train N and pauses it while it runs, and saves screenshots.

Needs ``apt-get install chromium`` and ``pip install playwright`` (never
``playwright install``). Without them the test is skipped — unless
``NBBP_REQUIRE_BROWSER=1`` (what ``./dev test`` sets), when it fails instead.
Screenshots go to ``$NBBP_SCREENSHOTS`` (default: the test's temporary directory).
See ../shared/RECIPES.md for the pitfalls this avoids.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nbbp.view.numbers import fmt

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent / "browser"
CHROMIUM = os.environ.get("NBBP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("NBBP_REQUIRE_BROWSER") == "1"
SERVER_START = 60.0         # seconds
PAGE_TIMEOUT = 60_000       # milliseconds
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--disable-dev-shm-usage"]


def _need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRED:
            pytest.fail(f"{why} (NBBP_REQUIRE_BROWSER=1: this test must run)")
        pytest.skip(why)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc), to be sure none outlives the test."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


class Lab:
    """A JupyterLab server on 127.0.0.1 with its own config, data and runtime dirs."""

    def __init__(self, root: Path) -> None:
        self.root, self.token = root, secrets.token_hex(16)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.work = root / "work"
        self.work.mkdir()
        for nb in HERE.glob("*.ipynb"):
            shutil.copy(nb, self.work / nb.name)
        env = dict(os.environ)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                         ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                         ("XDG_CONFIG_HOME", "xdg-config"), ("XDG_CACHE_HOME", "xdg-cache")):
            (root / sub).mkdir()
            env[var] = str(root / sub)
        notes = root / "settings" / "@jupyterlab" / "apputils-extension"
        notes.mkdir(parents=True)
        (notes / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        # render every cell, not only those in view (JupyterLab 4 windows long notebooks)
        tracker = root / "settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True)
        (tracker / "tracker.jupyterlab-settings").write_text(
            json.dumps({"windowingMode": "none"}))
        self.env = env
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.work}",
               "--LabApp.expose_app_in_browser=True"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = root / "jupyterlab.log"
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.work, start_new_session=True)
        self.pids: set[int] = set()

    def wait_ready(self) -> None:
        end = time.monotonic() + SERVER_START
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n"
                                   + self.tail())
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}",
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"JupyterLab did not answer within {SERVER_START:.0f} s:\n"
                           + self.tail())

    def tail(self) -> str:
        self._log.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self) -> None:
        """Shut down the server (and its kernels), then make sure nothing is left."""
        self.pids |= set(_descendants(self.proc.pid))
        if self.proc.poll() is None:
            try:
                req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}",
                                             method="POST")
                urllib.request.urlopen(req, timeout=5).close()
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        end = time.monotonic() + 5
        while any(_alive(p) for p in self.pids) and time.monotonic() < end:
            time.sleep(0.1)
        for p in self.pids:
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need(False, "Playwright is not installed (pip install playwright)")
    try:
        import ipywidgets  # noqa: F401
        import jupyterlab  # noqa: F401
    except ImportError:
        _need(False, "JupyterLab and ipywidgets are needed (pip install 'nbbp[lab]')")
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  const s = w && w.sessionContext && w.sessionContext.session;
  const k = s && s.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

TEXTS = """([scope, gid]) => Array.from(document.querySelectorAll(
  `${scope} .nbbp-graph svg g[id="${gid}"] text`)).map(t => t.textContent)"""


def _texts(page, scope: str, gid: str) -> list[str]:
    return page.evaluate(TEXTS, [scope, gid])


def _wait_texts(page, scope: str, gid: str, want: list[str], at: int = 0) -> None:
    """Wait until group ``gid``'s texts, from position ``at``, start with ``want``."""
    js = """([scope, gid, want, at]) => {
      const t = Array.from(document.querySelectorAll(
        `${scope} .nbbp-graph svg g[id="${gid}"] text`)).map(e => e.textContent);
      return want.every((w, i) => t[at + i] === w);
    }"""
    try:
        page.wait_for_function(js, arg=[scope, gid, want, at], timeout=PAGE_TIMEOUT)
    except Exception:
        raise AssertionError(f"{gid}: wanted {want} at {at}, page shows "
                             f"{_texts(page, scope, gid)}") from None


def test_sliders_step_through_and_training_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    shots = Path(os.environ.get("NBBP_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS, env=lab.env, timeout=PAGE_TIMEOUT)
        server = {lab.proc.pid, *_descendants(lab.proc.pid)}
        mine = set(_descendants(os.getpid())) - server      # the driver and Chromium
        page = browser.new_page(viewport={"width": 1360, "height": 1700})
        try:
            page.set_default_timeout(PAGE_TIMEOUT)
            page.goto(f"{lab.url}/lab/tree/live.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_IDLE, timeout=PAGE_TIMEOUT)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            ex = ".nbbp-explorer"
            page.locator(f"{ex} .nbbp-graph svg").wait_for()
            page.locator(".nbbp-trainer .nbbp-graph svg").wait_for()
            page.wait_for_function(KERNEL_IDLE, timeout=PAGE_TIMEOUT)

            # the picture as built: mul = x1·w1 = 2·(-3)
            _wait_texts(page, ex, "n5", ["value \xa0", "-6"], at=3)
            assert _texts(page, ex, "a_graph0")[:2] == ["neuron", " = 0.7071"]

            # one step of w1's slider with the keyboard: -3 → -2.5
            page.locator(f"{ex} .nbbp-slider-w1 .noUi-handle").focus()
            page.keyboard.press("ArrowRight")
            o = math.tanh(2 * -2.5 + 6.8813735870195432)
            do_dmul = 1 - o * o
            _wait_texts(page, ex, "n5", ["value \xa0", "-5", "grad \xa0", fmt(do_dmul)], at=3)
            _wait_texts(page, ex, "n2", ["value \xa0", "-2.5", "grad \xa0", fmt(2 * do_dmul)], at=3)
            assert _texts(page, ex, "a_graph0")[1] == f" = {fmt(o)}"
            assert _texts(page, ex, "e5_1") == [fmt(2 * do_dmul)]     # ∂o/∂w1 along w1 → mul

            # step through: restart, then forward and backward to the edge x1 → mul
            page.locator(f"{ex} button.nbbp-step-restart").click()
            _wait_texts(page, ex, "n0", ["grad \xa0", "pending"], at=5)
            nxt = page.locator(f"{ex} button.nbbp-step-next")
            for _ in range(14):          # 5 forward, the seed, 8 edges (docs: the order)
                nxt.click()
            explain = page.locator(f"{ex} .nbbp-explain")
            want = (f"∂o/∂mul · ∂mul/∂x1 = {fmt(do_dmul)} · (-2.5) = "
                    f"{fmt(-2.5 * do_dmul)}")
            explain.filter(has_text="backward 8/9").wait_for()
            assert want in explain.inner_text()
            _wait_texts(page, ex, "n0", ["grad \xa0", fmt(-2.5 * do_dmul)], at=5)
            _wait_texts(page, ex, "n2", ["grad \xa0", "pending"], at=5)      # w1 → mul is next
            assert _texts(page, ex, "e5_1") == ["pending"]
            stroke = page.evaluate(
                f"() => document.querySelector('{ex} .nbbp-graph g[id=\"e5_0\"] path')"
                ".getAttribute('stroke')")
            assert stroke == "#e6550d"                                       # the active edge
            page.locator(ex).screenshot(path=str(shots / "explorer.png"))

            # training: Train N runs without blocking the kernel; Pause stops it
            tr = ".nbbp-trainer"
            n_box = page.locator(f"{tr} .nbbp-train-n input")
            n_box.fill("300000")
            n_box.press("Enter")
            page.locator(f"{tr} button.nbbp-train-train").click()
            info = page.locator(f"{tr} .nbbp-train-info")
            page.wait_for_function(
                f"() => /step [1-9]/.test(document.querySelector('{tr} .nbbp-train-info')"
                ".textContent)", timeout=PAGE_TIMEOUT)
            page.wait_for_timeout(400)
            page.locator(f"{tr} button.nbbp-train-pause").click()
            info.filter(has_text="paused at").wait_for()
            steps = int(info.inner_text().split("step ")[1].split()[0])
            assert 0 < steps < 300000, info.inner_text()
            assert "data:image/png;base64," in page.locator(f"{tr} .nbbp-boundary").inner_html()
            page.wait_for_function(KERNEL_IDLE, timeout=PAGE_TIMEOUT)
            page.locator(tr).scroll_into_view_if_needed()
            page.locator(tr).screenshot(path=str(shots / "trainer.png"))
            page.screenshot(path=str(shots / "page.png"))
            errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr']").count()
            assert errors == 0
            assert page.locator(".nbbp-status").all_inner_texts() == ["", ""]
        except BaseException:
            page.screenshot(path=str(shots / "failure.png"))
            (shots / "failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    end = time.monotonic() + 10
    while any(_alive(p) for p in mine) and time.monotonic() < end:
        time.sleep(0.1)
    left = [p for p in mine if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"browser processes left running: {left}"
    assert time.monotonic() - t0 < 120


PICTURES = """(nb) => Array.from(document.querySelectorAll(`${nb} .jp-CodeCell`)).slice(1).map(cell => {
  const area = cell.querySelector('.jp-OutputArea-output');
  const pic = cell.querySelector('.jp-OutputArea-output svg, .jp-OutputArea-output img');
  if (!area || !pic) return null;
  let natural = pic.naturalWidth || 0;
  const w = pic.getAttribute && pic.getAttribute('width');
  if (!natural && w && w.endsWith('pt')) natural = parseFloat(w) * 4 / 3;
  let box = pic.parentElement, scroller = null;
  while (box && box !== area.parentElement) {
    if (getComputedStyle(box).overflowX === 'auto') { scroller = box; break; }
    box = box.parentElement;
  }
  return {tag: pic.tagName.toLowerCase(), area: area.getBoundingClientRect().width,
          width: pic.getBoundingClientRect().width, natural: natural,
          scrolls: scroller ? scroller.scrollWidth > scroller.clientWidth + 1 : false,
          view: scroller ? scroller.clientWidth : null};
})"""


def test_wide_pictures_scale_to_the_cell_then_scroll(lab, tmp_path):
    """A wide static picture and a wide live picture shrink to the cell's width; one too
    wide to stay readable stops at MIN_SCALE of its size and scrolls sideways."""
    from playwright.sync_api import sync_playwright

    from nbbp.view.dot import MIN_SCALE
    shots = Path(os.environ.get("NBBP_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS, env=lab.env, timeout=PAGE_TIMEOUT)
        page = browser.new_page(viewport={"width": 1360, "height": 2400})
        try:
            page.set_default_timeout(PAGE_TIMEOUT)
            # a workspace of its own, so that the other test's notebook is not open too
            page.goto(f"{lab.url}/lab/workspaces/wide/tree/wide.ipynb?reset&token={lab.token}")
            page.wait_for_function(
                "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " return !!w && !!w.context && w.context.path === 'wide.ipynb'; }",
                timeout=PAGE_TIMEOUT)
            page.wait_for_function(KERNEL_IDLE, timeout=PAGE_TIMEOUT)
            # look inside this notebook only
            page.evaluate("() => window.jupyterapp.shell.currentWidget.node"
                          ".setAttribute('data-nbbp-test', 'wide')")
            nb = "[data-nbbp-test=wide]"
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.locator(f"{nb} .nbbp-graph svg").wait_for()
            page.wait_for_function(KERNEL_IDLE, timeout=PAGE_TIMEOUT)
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "wide.png"), full_page=True)
            wide, huge, live = page.evaluate(PICTURES, nb)
            for pic in (wide, live):        # shrunk to the cell, not below MIN_SCALE
                assert pic["natural"] > pic["area"], pic
                assert pic["width"] <= pic["area"] + 1, pic
                assert pic["width"] / pic["natural"] >= MIN_SCALE - 0.01, pic
                assert not pic["scrolls"], pic
            # too wide: MIN_SCALE of its size, in a box of the cell's width that scrolls
            assert huge["natural"] * MIN_SCALE > huge["area"], huge
            assert abs(huge["width"] - huge["natural"] * MIN_SCALE) < 2, huge
            assert huge["scrolls"] and huge["view"] <= huge["area"] + 1, huge
            box = page.locator(f"{nb} .nbbp-picture").nth(1)
            box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
            assert box.evaluate("b => b.scrollLeft") > 100       # it really scrolls
            box.screenshot(path=str(shots / "wide-huge-scrolled.png"))
            page.locator(f"{nb} .nbbp-graph").screenshot(path=str(shots / "wide-live.png"))
        except BaseException:
            page.screenshot(path=str(shots / "wide-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
