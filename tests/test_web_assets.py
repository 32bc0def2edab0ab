"""The front-end files scrmbot serves itself (no CDN): the pinned npm packages and the
console's own files, cached for a day; anything else is a 404 in Chinese."""

from __future__ import annotations

from bot.web.assets import CACHE, VENDOR
from tests.harness import Harness


async def test_vendor_and_own_files_are_served_and_cached(harness: Harness) -> None:
    client = harness.client
    for name in VENDOR:
        r = await client.get(f"/static/vendor/{name}")
        assert r.status == 200 and r.headers["Cache-Control"] == CACHE, name
        assert len(await r.read()) > 1000
    r = await client.get("/static/console/console.css")
    assert r.status == 200 and r.headers["Cache-Control"] == CACHE


async def test_unknown_and_hidden_files_are_404(harness: Harness) -> None:
    client = harness.client
    for path in ("/static/vendor/jquery.js", "/static/console/.env",
                 "/static/console/..%2Fstatic%2Fconsole.css", "/static/console/nothing.js"):
        r = await client.get(path)
        assert r.status == 404, path
        assert "没有这个文件" in await r.text()


async def test_favicon_points_at_the_console_icon(harness: Harness) -> None:
    r = await harness.client.get("/favicon.ico", allow_redirects=False)
    assert r.status == 301 and r.headers["Location"] == "/static/console/favicon.svg"
    assert (await harness.client.get("/favicon.ico")).status == 200
