"""Static files, served by scrmbot itself: a corp's intranet and the sandbox work offline.

Vendor files (ECharts, @wecom/jssdk) come from the npm registry, pinned in
`package-lock.json` and installed by `npm ci` (`make run` and `make test` do it);
our own small CSS and JavaScript live beside this module. Nothing is ever loaded from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

OWN_DIR = Path(__file__).resolve().parent / "static"
# URL name → path under node_modules/
VENDOR: dict[str, str] = {
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "wecom.js": "@wecom/jssdk/dist/wecom.global.prod.js",
}
CACHE = "public, max-age=86400"


def default_assets_dir() -> Path:
    """Where `npm ci` puts the vendor files: node_modules/ at the project's root."""
    return Path(__file__).resolve().parents[2] / "node_modules"


def setup_domain_verification(app: web.Application, path: Path) -> None:
    """Serve WeCom's domain check file (`WW_verify_….txt`) at the site's root: the admin
    console asks for it before it accepts the domain as the app's 可信域名."""
    body = path.read_bytes()

    async def verification(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    app.router.add_get(f"/{path.name}", verification)


def setup_assets(app: web.Application, node_modules: Path) -> None:
    async def vendor(request: web.Request) -> web.StreamResponse:
        relative = VENDOR.get(request.match_info["name"])
        if relative is None:
            raise web.HTTPNotFound(text="没有这个文件")
        path = node_modules / relative
        if not path.is_file():
            raise web.HTTPNotFound(text=f"前端资源未安装（缺少 {path}）：在项目目录运行 "
                                        "npm ci，或 make run / make test 自动安装。")
        return web.FileResponse(path, headers={"Cache-Control": CACHE})

    async def own(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = OWN_DIR / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound(text="没有这个文件")
        return web.FileResponse(path, headers={"Cache-Control": CACHE})

    async def favicon(request: web.Request) -> web.StreamResponse:
        """Browsers ask for /favicon.ico on pages that name no icon (an export, a JSON
        endpoint opened by hand): the console's icon, not a 404 in the log."""
        raise web.HTTPMovedPermanently("/static/console/favicon.svg")

    app.router.add_get("/static/vendor/{name}", vendor)
    app.router.add_get("/static/console/{name}", own)
    app.router.add_get("/favicon.ico", favicon)
