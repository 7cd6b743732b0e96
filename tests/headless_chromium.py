"""A headless Chromium (the Debian package) driven over the DevTools protocol, for the dashboard tests.

Only what the tests need: open a page, wait until a script condition holds (in real time, so map
tiles loaded by web workers are waited for), evaluate script, take a screenshot, and collect what
the Content-Security-Policy blocked (`csp_violations`: the browser's own reports, from the console
log and the pages' `securitypolicyviolation` events). No browser is downloaded: the `chromium` found
on PATH is used (`make install` installs it).
"""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--hide-scrollbars",
         "--window-size=1400,1100", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


_REPORT_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => window.__cspViolations.push(
  `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`));
"""


class Chromium:
    def __init__(self, start_timeout: float = 30.0) -> None:
        path = chromium_path()
        if path is None:
            raise RuntimeError("chromium is not installed: run `make install` (Debian package chromium)")
        # Chromium's helper processes may still be writing the profile for a moment after it exits.
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self._process = subprocess.Popen([path, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + start_timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page = self._page_target(port, deadline)
        self._connection = contextlib.ExitStack()
        self._socket = self._connection.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=10))
        self._ids = itertools.count(1)
        self.console: list[str] = []
        self.csp_violations: list[str] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": _REPORT_CSP_VIOLATIONS})

    @staticmethod
    def _page_target(port: int, deadline: float) -> dict[str, Any]:
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
            if pages:
                return pages[0]
            if time.monotonic() > deadline:
                raise RuntimeError("chromium has no page to drive")
            time.sleep(0.1)

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif message.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(message["params"]["exceptionDetails"])[:500])
            elif message.get("method") == "Log.entryAdded":
                entry = message["params"]["entry"]
                self.console.append(f"{entry.get('level')}: {entry.get('text', '')}"[:500])
                if "Content Security Policy" in entry.get("text", ""):
                    self.csp_violations.append(entry["text"][:500])
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def page_csp_violations(self) -> list[str]:
        """What the policy blocked in the current page, as its `securitypolicyviolation` events said."""
        return self.evaluate("window.__cspViolations || []")

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate and wait until the new document is there (not the previous one still showing)."""
        self.evaluate("window.__previousDocument = true")
        self.send("Page.navigate", {"url": url})
        self.wait_for("!window.__previousDocument && document.readyState !== 'loading'", timeout)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll until the script expression is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for: {expression}\nconsole: {self.console[-10:]}")
            time.sleep(0.2)

    def html(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "_connection", None) is not None:
                self._connection.close()
        finally:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=10)
            for _ in range(20):
                shutil.rmtree(self._profile.name, ignore_errors=True)
                if not Path(self._profile.name).exists():
                    break
                time.sleep(0.1)
            self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
