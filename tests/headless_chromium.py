"""Headless Chromium for the browser tests, driven over the Chrome DevTools Protocol: the system's
`chromium` binary (nothing is downloaded), one page, and a small synchronous CDP client."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One browser tab. `send` runs a CDP command; `evaluate` runs JavaScript and returns its value;
    every URL the page requested is kept in `requested_urls`."""

    def __init__(self, websocket) -> None:
        self.websocket = websocket
        self.ids = itertools.count(1)
        self.requested_urls: list[str] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        command_id = next(self.ids)
        self.websocket.send(json.dumps({"id": command_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.websocket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("method") == "Network.requestWillBeSent":
                self.requested_urls.append(message["params"]["request"]["url"])
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20, what: str | None = None) -> Any:
        """Poll `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or expression}")
            time.sleep(0.2)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    def reload(self) -> None:
        self.evaluate("window.__beforeReload = true")
        self.send("Page.reload", {"ignoreCache": True})
        self.wait_for("!window.__beforeReload && document.readyState === 'complete'", what="the reload")

    def insert_text(self, text: str) -> None:
        """Type `text` into the focused element, as a keyboard would (real input events)."""
        self.send("Input.insertText", {"text": text})


@contextlib.contextmanager
def chromium_page(binary: str, profile: Path):
    """A fresh headless Chromium (profile in `profile`) and its one page; closed afterwards."""
    process = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, f"chromium exited with {process.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port within 30 s"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page_target = next(t for t in targets if t["type"] == "page")
        with connect(page_target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as websocket:
            page = Page(websocket)
            page.send("Page.enable")
            page.send("Runtime.enable")
            page.send("Network.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
