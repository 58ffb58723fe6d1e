"""A real headless browser (Debian's chromium, driven by Playwright over its DevTools protocol)
opening a report page from disk with the network cut off.

    python tests/browser.py PAGE.html SHOT.png      # prints what ``open_page`` found, as JSON

What it records: console messages of type error or warning, uncaught page errors, every request
whose URL is not a ``file://`` URL (each is aborted, so a page that needs the network shows it),
failed requests, and for each ``<svg>`` and ``<canvas>`` its rendered size and how many shapes
it drew. The browser comes from ``$SHUZHI_CHROMIUM`` or the PATH (``chromium``); the set-up
script installs Debian's package.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

CHARTS_JS = """() => [...document.querySelectorAll('svg, canvas')].map(e => {
  const r = e.getBoundingClientRect();
  const shapes = e.tagName.toLowerCase() === 'svg'
    ? e.querySelectorAll('path, circle, rect, line, polyline, polygon').length : (e.width * e.height > 0 ? 1 : 0);
  return {tag: e.tagName.toLowerCase(), width: r.width, height: r.height, shapes: shapes,
          title: (e.querySelector('title') || {}).textContent || ''};
})"""


def chromium() -> str | None:
    return os.environ.get("SHUZHI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def open_page(page_path: Path, screenshot: Path | None = None, *, follow: str | None = None) -> dict:
    """Load ``page_path`` in headless chromium (offline); return what it saw. ``follow``: the text
    of a link to click after loading (its target is loaded and checked the same way, under ``followed``)."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"console": [], "page_errors": [], "outside_requests": [], "failed_requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        try:
            ctx = browser.new_context(offline=True, viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page = ctx.new_page()
            page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
            page.on("requestfailed", lambda r: seen["failed_requests"].append(r.url))

            def route(r):
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    seen["outside_requests"].append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(Path(page_path).resolve().as_uri(), wait_until="load")
            seen["title"] = page.title()
            seen["charts"] = page.evaluate(CHARTS_JS)
            seen["text"] = page.inner_text("body")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            if follow:
                page.get_by_text(follow, exact=False).first.click()
                page.wait_for_load_state("load")
                seen["followed"] = {"url": page.url, "title": page.title(), "text": page.inner_text("body")}
        finally:
            browser.close()
    return seen


if __name__ == "__main__":
    out = open_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    out.pop("text")
    print(json.dumps(out, ensure_ascii=False, indent=1))
