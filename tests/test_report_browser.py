"""ml.report's pages opened in a real headless browser (Chromium from Debian, /usr/bin/chromium),
driven through the Chrome DevTools Protocol over a pipe (``--remote-debugging-pipe``: commands
on the browser's file descriptor 3, replies and events on 4, each a JSON text ended by a NUL
byte), so no websocket package and no port are needed.

What is observed, not inferred: every console message (Runtime.consoleAPICalled), every
uncaught exception (Runtime.exceptionThrown), every browser log entry such as a failed load
(Log.entryAdded), and every request the page makes (Network.requestWillBeSent: only the
page's own file:// and data: URIs are allowed). The harness is itself checked on a control
page that logs an error, throws and loads a missing image, so that a harness that sees
nothing cannot pass. Slow: starting the browser takes seconds.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import multilevel as ml
from multilevel.report.page import SECTIONS

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASH = shutil.which("bash") or "/bin/bash"  # dash reads only one-digit fds in redirections
TIMEOUT_S = 60.0

# What the page shows, measured in the browser: each section's box, the images' decoded size.
PROBE = """
(async () => {
  const images = [...document.images];
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  return {
    sections: Object.fromEntries([...document.querySelectorAll('section')].map(s =>
      [s.id, {box: box(s), heading: s.querySelector('h2')?.textContent ?? null,
              text: s.innerText.length}])),
    images: images.map(i => ({id: i.closest('figure')?.id ?? null, complete: i.complete,
                              natural: [i.naturalWidth, i.naturalHeight], box: box(i)})),
    coefficientRows: document.querySelectorAll('#coefficient-table tbody tr').length,
    title: document.title,
  };
})()
"""


class Browser:
    """A headless Chromium and one page of it, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser's ends go to fds 3 and 4 by bash's redirections (no preexec_fn:
        # forking a process that runs JAX's threads is unsafe). They are first moved to fds
        # of 10 and up, so that the redirections cannot overwrite one another.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        self.proc = subprocess.Popen(
            [BASH, "-c", f'exec "$0" "$@" 3<&{child_r} 4>&{child_w}', CHROMIUM,
             "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(child_r, child_w))
        os.close(child_r)
        os.close(child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: bool = False) -> dict[str, Any]:
        """Send one command; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            command["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e["method"] == event for e in self.events):
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)

    def open(self, path: Path) -> dict[str, Any]:
        """Load ``path``, wait for its load event, and measure it with ``PROBE``."""
        self.events.clear()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")
        result = self.call("Runtime.evaluate", {"expression": PROBE, "awaitPromise": True,
                                                "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"the probe failed: {result['exceptionDetails']}")
        return result["result"]["value"]

    def problems(self) -> list[str]:
        """Console messages of level warning or error, uncaught exceptions, browser log
        entries of level warning or error, since the last ``open``."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in (
                    "error", "warning", "assert"):
                out.append(f"console.{p['type']}: "
                           + " ".join(str(a.get("value", a.get("description")))
                                      for a in p.get("args", [])))
            elif e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error",
                                                                             "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("Chromium is needed for this slow test: apt-get install chromium")
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_the_harness_sees_console_errors_exceptions_and_failed_loads(browser, tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html><head><title>control</title>"
                       "<link rel='icon' href='data:,'></head><body><section id='s'><h2>x</h2>"
                       "</section><img src='missing.png' alt=''>"
                       "<script>console.error('control error'); undefinedFunction();</script>"
                       "</body></html>", encoding="utf-8")
    seen = browser.open(control)
    problems = browser.problems()
    assert any("control error" in p for p in problems), problems
    assert any(p.startswith("exception:") for p in problems), problems
    assert any("missing.png" in url for url in browser.requests())
    assert any(p.startswith("log error") for p in problems), problems  # the failed load
    assert seen["sections"]["s"]["heading"] == "x"


def _check_rendered(browser: Browser, path: Path, fit: Any, figures: list[str]) -> None:
    seen = browser.open(path)
    assert browser.problems() == []
    for url in browser.requests():  # the page itself, and nothing from elsewhere
        assert url == path.resolve().as_uri() or url.startswith("data:"), url
    for ident, heading in SECTIONS:
        section = seen["sections"][ident]
        assert section["heading"] == heading
        width, height = section["box"]
        assert width > 100 and height > 20 and section["text"] > 0, (ident, section)
    assert seen["coefficientRows"] == len(fit.coef_table())
    assert sorted(i["id"] for i in seen["images"]) == sorted(figures)
    for image in seen["images"]:
        assert image["complete"] and min(image["natural"]) > 100, image
        assert min(image["box"]) > 50, image


def test_lmer_report_renders_with_every_section_and_no_console_error(browser, tmp_path):
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    path = ml.report(fit, tmp_path / "lmer.html", data_name="sleepstudy")
    _check_rendered(browser, path, fit, ["caterpillar-plot", "residual-plot"])


def test_glmer_and_gls_reports_render(browser, tmp_path):
    glmm = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    ml.datasets.load("cbpp"), family="binomial")
    _check_rendered(browser, ml.report(glmm, tmp_path / "glmer.html"), glmm,
                    ["caterpillar-plot", "residual-plot"])
    gls = ml.gls("distance ~ age", ml.datasets.load("Orthodont"),
                 correlation=ml.CorCompSymm(form="~ 1 | Subject"))
    _check_rendered(browser, ml.report(gls, tmp_path / "gls.html"), gls, ["residual-plot"])


def test_bayes_report_renders(browser, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.bayes("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"),
                       chains=2, draws=200, warmup=200, progress=False, seed=1)
    _check_rendered(browser, ml.report(fit, tmp_path / "bayes.html"), fit,
                    ["caterpillar-plot", "residual-plot"])
