"""Order pages in the console: the list and an order (only orders whose customer the member
may see, as `/order`), and the import page where an admin uploads a platform's export and
reads the same report as `scrmbot orders import`, with each import's refused rows."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import unquote, urlencode

from aiohttp import web
from tortoise.expressions import Q, Subquery

from bot.access.errors import NotFound, Refusal
from bot.app.context import PageReq, Pages
from bot.domain.order_layouts import LAYOUTS
from bot.domain.orders import SOURCE_NAMES, STATUS_NAMES, STATUSES
from bot.store.files import SUPPORTED
from bot.web.listing import COUNT_CAP, PAGE_SIZE, listing, newest_page
from handlers.customers.service import mobile_shown_to
from handlers.orders.importer import import_file
from models import Customer, Order, OrderImport, Staff

pages = Pages("orders")

IMPORT_ROLE = "admin"  # a file may hold any region's buyers
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
FILTERS = ("q", "source", "shop", "status")


def _query_string(page: PageReq, number: int | None = None) -> str:
    values = {name: page.arg(name) for name in FILTERS}
    values["page"] = str(number) if number else ""
    return urlencode({k: v for k, v in values.items() if v})


def visible_orders(page: PageReq) -> Q:
    """Orders of the customers the member may see (the region scope of customers)."""
    return Q(customer_id__in=Subquery(page.data.customers().values("id")))


@pages.page("/orders", title="订单列表", role="viewer", customer_data=True, nav="列表",
            order=15)
async def order_list(page: PageReq) -> web.StreamResponse:
    """Orders of the customers the member may see, newest first, 20 a page; filtered by
    platform, shop, status, and an order number or buyer phone."""
    query = Order.filter(visible_orders(page))
    q = page.arg("q").strip()
    if q:
        query = query.filter(Q(number=q) | Q(buyer_phone=q))
    if page.arg("source") in SOURCE_NAMES:
        query = query.filter(source=page.arg("source"))
    if page.arg("shop"):
        query = query.filter(shop=page.arg("shop"))
    if page.arg("status") in STATUSES:
        query = query.filter(status=page.arg("status"))
    number = page.int_arg("page", 1, minimum=1, maximum=COUNT_CAP // PAGE_SIZE)
    counted = await listing(query)
    rows = await newest_page(query, counted, number)
    customers = {c.id: c for c in await Customer.filter(
        id__in=[o.customer_id for o in rows if o.customer_id])}
    return page.render(
        "orders/list.html.j2", rows=rows, customers=customers, total=counted.total,
        capped=counted.capped, cap=COUNT_CAP, number=number, pages=counted.pages,
        filters={name: page.arg(name) for name in FILTERS}, sources=SOURCE_NAMES,
        statuses=STATUS_NAMES, shops=[s.shop for s in page.ctx.rules.current.orders.shops],
        can_import=page.member.role == IMPORT_ROLE,
        prev_qs=_query_string(page, number - 1) if number > 1 else None,
        next_qs=_query_string(page, number + 1) if number < counted.pages else None)


@pages.page(r"/orders/{id:\d+}", title="订单详情", role="viewer", customer_data=True)
async def order_detail(page: PageReq) -> web.StreamResponse:
    order = await Order.filter(visible_orders(page)).get_or_none(
        id=int(page.request.match_info["id"]))
    if order is None:
        raise NotFound("没有这个订单，或其客户不在您的数据范围。")
    customer = await Customer.get_or_none(id=order.customer_id or 0)
    mobile = "" if customer is None else mobile_shown_to(customer, page.member.userid)
    return page.render("orders/detail.html.j2", o=order, customer=customer, mobile=mobile,
                       sources=SOURCE_NAMES, statuses=STATUS_NAMES)


@pages.page("/orders/import", title="导入订单", role=IMPORT_ROLE, nav="管理", order=20)
async def import_page(page: PageReq) -> web.StreamResponse:
    """The upload form and the last imports with their reports."""
    imports = await OrderImport.all().order_by("-id").limit(20)
    names = {s.userid: s.name or s.userid for s in await Staff.filter(
        userid__in=sorted({i.started_by for i in imports if i.started_by}))}
    return page.render("orders/import.html.j2", imports=imports, names=names,
                       sources=SOURCE_NAMES,
                       layouts={s: LAYOUTS[s].title for s in LAYOUTS},
                       shops=page.ctx.rules.current.orders.shops,
                       suffixes="、".join(SUPPORTED))


@pages.page("/orders/import.json", title="上传订单文件", role=IMPORT_ROLE, changes_data=True,
            method="POST", name="upload_orders", transactional=False)
async def upload_orders(page: PageReq) -> web.StreamResponse:
    """The file is the request body (the page sends it with fetch, the CSRF token in a
    header), streamed to disk and imported; the answer is the import's report."""
    request = page.request
    name = Path(unquote(request.headers.get("X-File-Name", "")) or "orders.csv").name
    if Path(name).suffix.lower() not in SUPPORTED:
        raise Refusal(f"不支持的文件类型，请上传 {'、'.join(SUPPORTED)} 文件。")
    folder = Path(page.ctx.settings.data_dir) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload-{uuid.uuid4().hex[:12]}{Path(name).suffix.lower()}"
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := await request.content.read(1 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise Refusal(f"文件超过 {MAX_UPLOAD_BYTES >> 20} MB，请按月份拆分后导入。")
                out.write(chunk)
        if not size:
            raise Refusal("没有收到文件内容。")
        report = await import_file(page.ctx, path, source=page.arg("source"),
                                   shop=page.arg("shop") or None,
                                   started_by=page.member.userid, file_name=name)
    finally:
        path.unlink(missing_ok=True)
    c = report.counts
    return web.json_response({
        "ok": not report.failed, "import_id": report.import_id,
        "lines": report.lines(with_path=False),
        "rows": report.rows, "imported": c.imported, "updated": c.updated,
        "unchanged": c.unchanged, "stale": c.stale, "refused": c.refused,
        "errors": f"/orders/import/{report.import_id}/errors.csv" if report.error_file
        else None})


@pages.page(r"/orders/import/{id:\d+}/errors.csv", title="导入错误行", role=IMPORT_ROLE)
async def import_errors(page: PageReq) -> web.StreamResponse:
    """An import's refused rows: 行号, 原因 and the row as it was."""
    done = await OrderImport.get_or_none(id=int(page.request.match_info["id"]))
    if done is None or not done.error_file or not await asyncio.to_thread(
            Path(done.error_file).is_file):
        raise NotFound("这次导入没有被拒绝的行，或错误文件已被清理。")
    return web.FileResponse(Path(done.error_file), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f"attachment; filename*=UTF-8''{done.id}-errors.csv"})
