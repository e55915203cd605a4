"""docs/app.png: the app on a model (default: the shipped one) after Start + 3 x Add, in Chromium.

    python scripts/screenshot_app.py [--model RUN] [--out docs/app.png] [--port 7861] [--chords "Am F C G"]

With ``--chords`` the progression goes into the chord panel first (the piano roll shows it above the notes).

Starts `mmmgen app`, drives it with Playwright and the Debian chromium (never downloads a browser).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default=str(ROOT / "docs" / "app.png"))
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--chords", default=None, help="a progression for the chord panel, e.g. 'Am F C G'")
    args = parser.parse_args()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mmmgen", "app", "--port", str(args.port), *(["--model", args.model] if args.model else [])]
    server = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            if args.chords:
                page.locator("#chords textarea").fill(args.chords)
            for label, n in (("Start from scratch", 1), ("Add instrument", 2), ("Add instrument", 3), ("Add instrument", 4)):
                page.get_by_role("button", name=label, exact=True).click()
                page.wait_for_timeout(500)
                page.wait_for_function(
                    "n => { const t = document.querySelector('#tokens textarea');"
                    " return t && t.value.split(' ').filter(w => w.startsWith('INST=') && w !== 'INST=CHORDS').length === n"
                    " && !document.body.innerText.includes('processing'); }", arg=n, timeout=300_000)
            page.wait_for_selector("#pianoroll img", timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
