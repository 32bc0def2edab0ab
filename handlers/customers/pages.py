"""Customer pages in the console: the list (the very filters of `/customer list`), a
customer's detail, and the list's export. Every customer shown comes from `page.data`,
the member's region scope; a customer outside it answers 404 like one that does not exist.

Mobiles are masked everywhere but for the customer's own owner: a list or a file travels
further than a chat reply, so the console is more careful than `/customer export`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web

from bot.access.errors import NotFound, Refusal
from bot.app.context import PageReq, Pages
from bot.domain.orders import SOURCE_NAMES as ORDER_SOURCES
from bot.domain.orders import STATUS_NAMES as ORDER_STATES
from bot.domain.roles import has_role
from bot.web.exports import Cell, Table
from bot.web.listing import COUNT_CAP, PAGE_SIZE, every_row, listing, newest_page
from handlers.customers.service import (
    CHUNK,
    CustomerFilter,
    CustomerRow,
    customer_rows,
    filtered_customers,
)
from handlers.customers.tags import shown_tag
from handlers.tickets.service import STATUS_NAMES as TICKET_STATES
from models import CorpTag, CustomerTag, FollowRelation, Order, Purchase, Staff
from models.contacts import CustomerStatus

pages = Pages("customers")

EXPORT_LIMIT = 50_000
EXPORT_ROLE = "editor"  # as `/customer export`
FILTER_NAMES = ("tag", "owner", "region", "channel", "dormant")
STATUS_NAMES = {CustomerStatus.ACTIVE: "正常", CustomerStatus.ENDED: "已流失"}
RELATION_NAMES = {"half": "待通过验证", "active": "正常", "deleted_by_staff": "员工已删除",
                  "deleted_by_customer": "客户已删除"}


def wanted(page: PageReq) -> CustomerFilter:
    return CustomerFilter(tag=page.arg("tag"), owner=page.arg("owner"),
                          region=page.arg("region"), channel=page.arg("channel"),
                          dormant=page.arg("dormant") in ("1", "on", "true"))


def query_string(page: PageReq, number: int | None = None) -> str:
    """The list's filters as a query string, and the page `number` to go to."""
    values = {name: page.arg(name) for name in FILTER_NAMES}
    values["page"] = str(number) if number else ""
    return urlencode({name: value for name, value in values.items() if value})


async def filter_choices(page: PageReq) -> dict[str, list[str] | list[tuple[str, str]]]:
    """What the filter form offers: regions, owners (of the member's region), the channels
    the member may see, the corp's tags."""
    staff = Staff.filter(active=True)
    if not page.scope.all_regions:
        staff = staff.filter(region=page.scope.region) if page.scope.region \
            else staff.filter(userid=page.member.userid)
    owners = [(s.userid, s.name or s.userid) for s in await staff.order_by("name").limit(500)]
    channels = await page.data.channels().order_by("name").limit(500).values_list(
        "name", flat=True)
    tags = [shown_tag(page.ctx, t.group_name, t.name) for t in
            await CorpTag.filter(deleted=False).order_by("group_name", "name").limit(500)]
    return {"regions": list(page.ctx.rules.current.regions), "owners": owners,
            "channels": [str(c) for c in channels], "tags": tags}


@pages.page("/customers", title="客户列表", role="viewer", customer_data=True, nav="列表",
            order=10)
async def customer_list(page: PageReq) -> web.StreamResponse:
    """The customers the member may see, filtered as `/customer list`, 20 a page."""
    filters = wanted(page)
    number = page.int_arg("page", 1, minimum=1, maximum=COUNT_CAP // PAGE_SIZE)
    notice, rows, total, pages_total = "", [], 0, 1
    try:
        query = await filtered_customers(page.data, filters)
    except Refusal as exc:  # an unknown channel: say so above an empty list
        notice = str(exc)
    else:
        counted = await listing(query)
        total, pages_total = counted.total, counted.pages
        rows = await customer_rows(page.ctx, await newest_page(query, counted, number))
    return page.render(
        "customers/list.html.j2", rows=rows, filters=filters, notice=notice, total=total,
        capped=total > COUNT_CAP, cap=COUNT_CAP, number=number, pages=pages_total,
        choices=await filter_choices(page), me=page.member.userid,
        can_export=has_role(page.member.role, EXPORT_ROLE),
        prev_qs=query_string(page, number - 1) if number > 1 else None,
        next_qs=query_string(page, number + 1) if number < pages_total else None,
        export_qs=query_string(page))


def _day(moment: datetime | None, page: PageReq) -> str:
    return moment.astimezone(page.ctx.settings.tz).strftime("%Y-%m-%d") if moment else ""


EXPORT_COLUMNS = ("姓名", "手机", "负责人", "区域", "门店", "来源渠道", "标签", "首次添加",
                  "最近购买", "累计消费(元)", "沉睡", "状态")


def export_row(page: PageReq, row: CustomerRow) -> list[Cell]:
    c = row.customer
    mobile = row.mobile_for(page.member.userid) if c.mobile else ""
    return [c.name, mobile, row.owner, c.region or "", c.store or "", row.channel,
            "、".join(row.tags), _day(c.first_contact_at, page), _day(c.last_purchase_at, page),
            f"{c.lifetime_spend_fen / 100:.2f}", "是" if c.dormant_since else "",
            STATUS_NAMES.get(c.status, str(c.status))]


# Registered before `/customers/{id}`, which would otherwise take "export.csv" for an id.
@pages.page("/customers/export.{format}", title="导出客户", role=EXPORT_ROLE,
            customer_data=True)
async def customer_export(page: PageReq) -> web.StreamResponse:
    """The filtered list as CSV or XLSX, at most 50,000 customers, masked mobiles but for
    the member's own customers."""
    query = await filtered_customers(page.data, wanted(page))
    counted = await listing(query, EXPORT_LIMIT)  # ids only, before any row
    if counted.capped:
        raise Refusal(f"超过 {EXPORT_LIMIT} 位客户，请用标签、区域等条件缩小范围后再导出。")
    found = await every_row(query, counted, CHUNK)
    rows = [export_row(page, row) for row in await customer_rows(page.ctx, found)]
    day = page.ctx.clock.now().astimezone(page.ctx.settings.tz).strftime("%Y%m%d")
    return page.export(Table("客户", EXPORT_COLUMNS, rows), f"客户-{day}")


@pages.page("/customers/{id}", title="客户详情", role="viewer", customer_data=True)
async def customer_detail(page: PageReq) -> web.StreamResponse:
    """One customer: profile, tags by group, orders from every platform, purchases, tickets
    the member may see, and
    the members who have them as a contact."""
    text = page.request.match_info["id"]
    customer = await page.data.customers().get_or_none(id=int(text)) \
        if text.isdigit() and len(text) < 12 else None
    if customer is None:
        raise NotFound("没有这位客户，或不在你的可见范围内。")
    [row] = await customer_rows(page.ctx, [customer])
    groups: dict[str, list[CustomerTag]] = defaultdict(list)
    for tag in await CustomerTag.filter(customer=customer).order_by("group_name", "name"):
        groups[tag.group_name or "未分组"].append(tag)
    purchases = await Purchase.filter(customer_id=customer.id).order_by("-at").limit(50)
    orders = await Order.filter(customer_id=customer.id).order_by("-paid_at", "-id").limit(50)
    tickets = await page.data.tickets().filter(customer_id=customer.id).order_by(
        "-id").limit(50)
    relations = await FollowRelation.filter(customer=customer).order_by("added_at")
    names = {s.userid: s.name or s.userid for s in await Staff.filter(
        userid__in=sorted({r.staff_userid for r in relations} |
                          {p.recorded_by for p in purchases}))}
    return page.render(
        "customers/detail.html.j2", row=row, c=customer, tag_groups=dict(groups),
        purchases=purchases, orders=orders, order_sources=ORDER_SOURCES,
        order_states=ORDER_STATES, tickets=tickets, relations=relations, names=names,
        mobile=row.mobile_for(page.member.userid), status_names=STATUS_NAMES,
        relation_names=RELATION_NAMES, ticket_states=TICKET_STATES)
