"""Drives ComfyUI's own web frontend in headless Chromium (Chrome DevTools Protocol over aiohttp,
which every ComfyUI environment has) to load UI-format workflows the way a person drops them on
the canvas, and reports what the frontend makes of them.

    python frontend_driver.py --url http://127.0.0.1:PORT --out result.json [--shots DIR] wf1.json ...

For each workflow, result.json holds the API prompt the frontend would queue
(``app.graphToPrompt().output``), the node types the frontend does not know, and a screenshot path.
Run with ComfyUI's python (needs aiohttp); the test in test_comfyui_frontend.py does that.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOAD_TIMEOUT_S = 120.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.errors: list[str] = []  # uncaught exceptions and console.error lines of the page

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send_json({"id": my_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=LOAD_TIMEOUT_S)
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if msg.get("method") == "Runtime.exceptionThrown":
                details = msg["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif msg.get("method") == "Runtime.consoleAPICalled" and msg["params"]["type"] == "error":
                self.errors.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in msg["params"]["args"])
                )

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")


async def drive(url: str, workflows: list[Path], shots: Path | None, debug_port: int) -> dict:
    import aiohttp  # ComfyUI's own dependency: run this script with ComfyUI's python

    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{debug_port}/json/list") as resp:
                    targets = await resp.json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium DevTools did not come up")
            await asyncio.sleep(0.5)
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            async with session.post(f"{url}/api/settings", json={"Comfy.TutorialCompleted": True}) as resp:
                resp.raise_for_status()  # no first-run template dialog over the canvas
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            await page.call(
                "Emulation.setDeviceMetricsOverride", width=1800, height=1000, deviceScaleFactor=1, mobile=False
            )
            await page.call("Page.navigate", url=url)
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while not await page.evaluate(
                "!!(window.app && window.app.graph && window.LiteGraph && window.app.canvas)"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError("the ComfyUI frontend did not start")
                await asyncio.sleep(1.0)
            await asyncio.sleep(2.0)  # node definitions are registered after app appears
            results = {}
            for path in workflows:
                page.errors.clear()
                data = json.loads(path.read_text())
                js = (
                    "(async () => {"
                    f"  const wf = {json.dumps(data)};"
                    "  const known = new Set(Object.keys(LiteGraph.registered_node_types));"
                    "  const unknown = [...new Set(wf.nodes.map(n => n.type).filter(t => !known.has(t)))];"
                    "  await app.loadGraphData(wf);"
                    "  const p = await app.graphToPrompt();"
                    "  const widgets = {};"
                    "  for (const n of app.graph._nodes) widgets[n.id] = (n.widgets || []).map(w => [w.name, w.value]);"
                    "  const audio = {};"  # every audio player: its source and whether the server serves it
                    "  for (const n of app.graph._nodes) for (const w of (n.widgets || [])) {"
                    "    const src = w.name === 'audioUI' ? w.element?.src : null;"
                    "    if (src) { const r = await fetch(src); audio[n.id] = [src, r.status, r.headers.get('content-type')]; }"
                    "  }"
                    "  app.canvas.ds.offset = [80 + (wf.extra?.ds?.offset?.[0] ?? 0), 40];"
                    "  app.canvas.ds.scale = 0.6; app.canvas.setDirty(true, true);"
                    "  return JSON.stringify({unknown, output: p.output, widgets, audio});"
                    "})()"
                )
                value = json.loads(await page.evaluate(js))
                if shots is not None:
                    await asyncio.sleep(1.0)
                    shot = await page.call("Page.captureScreenshot", format="png")
                    target = shots / f"{path.stem}.png"
                    target.write_bytes(base64.b64decode(shot["data"]))
                    value["screenshot"] = str(target)
                value["errors"] = list(page.errors)
                results[path.stem] = value
            return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--shots", type=Path)
    parser.add_argument("workflows", nargs="+", type=Path)
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("no chromium found", file=sys.stderr)
        return 3
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="stm2pe_chromium_")
    cmd = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--no-default-browser-check", f"--remote-debugging-port={port}",
        "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if args.shots:
            args.shots.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(asyncio.wait_for(drive(args.url, args.workflows, args.shots, port), timeout=300))
        args.out.write_text(json.dumps(results, indent=1))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
