"""Screenshots of the built documentation site, for the README and reviews.

Serves the built site (``docs/_build/html`` by default) on 127.0.0.1, opens pages in headless
chromium (Playwright, driving the system's chromium: ``/usr/bin/chromium`` or
``$CHAINRULE_CHROMIUM``) with every request to another host refused, so a page that would
load anything from the internet fails here, and saves PNGs into docs/::

    uv run --group docs sphinx-build -W --keep-going -b html docs docs/_build/html
    uv run python docs/screenshots.py                      # docs/api-page.png
    uv run python docs/screenshots.py --tutorial tutorials/01-first-gradient.html
                                                           # docs/tutorial-01-first-gradient.png

``--api PAGE`` picks the API page (a path inside the site); each ``--tutorial PAGE`` adds a
tutorial page, saved as ``docs/tutorial-<name>.png``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

DOCS = Path(__file__).resolve().parent
SITE = DOCS / "_build" / "html"
API_PAGE = "api/generated/chainrule.losses.BinaryCrossEntropy.html"
VIEWPORT = {"width": 1280, "height": 960}


def chromium() -> str:
    """The chromium binary to drive."""
    candidates = [os.environ.get("CHAINRULE_CHROMIUM"), "/usr/bin/chromium",
                  "/usr/bin/chromium-browser", shutil.which("chromium")]
    for path in candidates:
        if path and Path(path).exists():
            return path
    sys.exit("screenshots: error: no chromium binary; install chromium, or set "
             "CHAINRULE_CHROMIUM to one")


@contextmanager
def serving(site: Path):
    """The address of ``site`` served on 127.0.0.1 while the block runs."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def shoot(shots: list[tuple[str, Path]], site: Path) -> None:
    """Save each (page, png) of ``shots``; exit 1 naming the page that is missing, fails to
    load or asks for anything from another host."""
    from playwright.sync_api import sync_playwright

    with serving(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        outside: list[str] = []

        def route(request_route):
            url = request_route.request.url
            if urlsplit(url).hostname == "127.0.0.1":
                request_route.continue_()
            else:
                outside.append(url)
                request_route.abort()

        page.route("**/*", route)
        try:
            for name, png in shots:
                response = page.goto(f"{base}/{name}", wait_until="networkidle")
                if response is None or not response.ok:
                    sys.exit(f"screenshots: error: {name} is not in {site}; build the site "
                             "first, or give a page that exists")
                if outside:
                    sys.exit(f"screenshots: error: {name} asks for {outside[0]}; the pages "
                             "must load nothing from the internet")
                page.screenshot(path=str(png))
                print(f"{png}: {name}")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=SITE,
                        help="the built site (default: docs/_build/html)")
    parser.add_argument("--api", default=API_PAGE, metavar="PAGE",
                        help=f"the API page, saved as docs/api-page.png (default: {API_PAGE})")
    parser.add_argument("--tutorial", action="append", default=[], metavar="PAGE",
                        help="a tutorial page, saved as docs/tutorial-<name>.png (repeatable)")
    parser.add_argument("--no-api", action="store_true", help="take no API screenshot")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"no built site in {args.site}; build it first: uv run --group docs "
                     "sphinx-build -W --keep-going -b html docs docs/_build/html")
    shots = [] if args.no_api else [(args.api, DOCS / "api-page.png")]
    for name in args.tutorial:
        stem = Path(name).stem.removeprefix("tutorial-")
        shots.append((name, DOCS / f"tutorial-{stem}.png"))
    if not shots:
        parser.error("nothing to take: give --tutorial PAGE, or leave out --no-api")
    shoot(shots, args.site)
    return 0


if __name__ == "__main__":
    sys.exit(main())
