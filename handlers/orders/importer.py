"""Order files imported: rows streamed, each order's adjacent rows merged, batches of
orders stored one transaction each, every refused row written to an error file with its row
number and reason. Running the same file again changes nothing (unchanged orders are
skipped), so an import that stopped half-way is finished by running it again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tortoise.exceptions import IntegrityError

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.domain.order_layouts import LAYOUTS, Header, read_header, read_row
from bot.domain.orders import ImportCounts, OrderDataError, OrderRecord, merge_rows
from bot.store.db import analyze
from bot.store.files import (
    SHOWN_REFUSALS,
    ErrorRows,
    FileUnreadable,
    blank_row,
    open_rows,
    refusal_lines,
)
from handlers.orders.service import shop_for, store_orders
from models import Customer, Order, OrderImport, Purchase

logger = logging.getLogger(__name__)

BATCH_ORDERS = 1000  # orders per transaction: big enough to be fast, small enough to retry
HEADER_ROWS = 10  # a header may sit under a few title rows (淘宝's bill exports)
ANALYZE_AFTER = {1, 4, 16, 64, 256}  # batches after which PostgreSQL's statistics are renewed

Progress = Callable[[float, int], None]  # (fraction of the file read, rows read)


@dataclass
class ImportReport:
    import_id: int
    source: str
    shop: str
    rows: int = 0
    counts: ImportCounts = field(default_factory=ImportCounts)
    error_file: Path | None = None
    seconds: float = 0.0
    failed: str = ""  # why the import stopped early, if it did

    def lines(self, *, with_path: bool = True) -> list[str]:
        """The report as staff read it (the console links the error file instead of
        naming its path on the server)."""
        out = [f"导入完成：读取 {self.rows} 行。" if not self.failed else
               f"导入中断：{self.failed}（已写入的批次保留，重新导入同一文件即可续完）",
               self.counts.summary() + "。"]
        return out + refusal_lines(self.counts.refusals, self.counts.refused,
                                   self.error_file, with_path=with_path)


async def import_file(ctx: BotContext, path: Path, *, source: str, shop: str | None = None,
                      started_by: str = "", file_name: str = "",
                      on_progress: Progress | None = None) -> ImportReport:
    """Import one export file. Refusal for a file we cannot take at all (unknown source or
    shop, wrong layout, unreadable); row problems are counted and written, not raised."""
    layout = LAYOUTS.get(source)
    if layout is None:
        raise Refusal(f"来源 {source} 不支持文件导入，可选：{'、'.join(LAYOUTS)}")
    the_shop = shop_for(ctx, source, shop)
    if not await asyncio.to_thread(path.is_file):
        raise Refusal(f"找不到文件 {path}")
    try:
        stream = open_rows(path)
        rows = _numbered(stream.rows)
        header, header_cells = _find_header(layout.source, rows)
    except (FileUnreadable, OrderDataError) as exc:
        raise Refusal(str(exc)) from None
    record = await OrderImport.create(source=source, shop=the_shop.shop,
                                      file_name=(file_name or path.name)[:255],
                                      started_by=started_by, started_at=ctx.clock.now())
    errors = ErrorRows(Path(ctx.settings.data_dir) / "imports" /
                     f"{record.id}-{Path(file_name or path.name).stem}-错误行.csv", header_cells)
    report = ImportReport(record.id, source, the_shop.shop)
    await analyze(Order, Purchase, Customer)
    started = time.monotonic()
    run = _Run(ctx, header, the_shop.shop, report, errors)
    try:
        for row_no, cells in rows:
            report.rows += 1
            await run.row(row_no, cells)
            if on_progress is not None and report.rows % 2000 == 0:
                on_progress(stream.fraction(), report.rows)
        await run.finish()
    except FileUnreadable as exc:
        report.failed = str(exc)
    except Exception as exc:
        logger.exception("order import %s stopped at row %s", record.id, run.last_row)
        report.failed = f"第 {run.last_row} 行附近出错：{exc}"
    finally:
        report.error_file = errors.close()
        report.seconds = time.monotonic() - started
        c = report.counts
        await OrderImport.filter(id=record.id).update(
            finished_at=ctx.clock.now(), rows=report.rows, imported=c.imported,
            updated=c.updated, unchanged=c.unchanged, stale=c.stale, refused=c.refused,
            error_file=str(report.error_file or ""), failed=report.failed)
    if on_progress is not None:
        on_progress(1.0, report.rows)
    return report


def _numbered(rows: Iterator[list[object]]) -> Iterator[tuple[int, list[object]]]:
    yield from enumerate(rows, 1)


def _find_header(source: str, rows: Iterator[tuple[int, list[object]]]
                 ) -> tuple[Header, list[object]]:
    """The header: the first of the first few non-blank rows that matches the layout."""
    layout = LAYOUTS[source]
    first_problem: OrderDataError | None = None
    tried = 0
    for _, cells in rows:
        if blank_row(cells):
            continue
        try:
            return read_header(layout, cells), cells
        except OrderDataError as exc:
            first_problem = first_problem or exc
        tried += 1
        if tried >= HEADER_ROWS:
            break
    raise first_problem or OrderDataError("文件是空的")


class _Run:
    """One import's state: the order whose rows are being gathered, and the batch."""

    def __init__(self, ctx: BotContext, header: Header, shop: str, report: ImportReport,
                 errors: ErrorRows) -> None:
        self.ctx, self.header, self.shop = ctx, header, shop
        self.report, self.errors = report, errors
        self.group: list[tuple[int, list[object], OrderRecord | None, str]] = []
        self.group_number: str | None = None
        self.batch: dict[tuple[str, str, str], OrderRecord] = {}
        self.last_row = 0
        self.batches = 0

    async def row(self, row_no: int, cells: list[object]) -> None:
        self.last_row = row_no
        if blank_row(cells):
            return
        number = str(self.header.cell(cells, "number") or "").strip()
        if self.group and number != self.group_number:
            await self._close_group()
        self.group_number = number
        try:
            parsed = read_row(self.header, cells, self.shop, self.ctx.settings.tz)
            self.group.append((row_no, cells, parsed, ""))
        except OrderDataError as exc:
            self.group.append((row_no, cells, None, str(exc)))

    async def finish(self) -> None:
        if self.group:
            await self._close_group()
        await self._flush()

    async def _close_group(self) -> None:
        """An order is taken whole or refused whole: one bad row refuses its other rows."""
        group, self.group = self.group, []
        bad = [(n, reason) for n, _, parsed, reason in group if parsed is None]
        if bad:
            for n, cells, _, reason in group:
                why = reason or f"同一订单的第 {bad[0][0]} 行有误：{bad[0][1]}"
                self._refuse(n, why, cells)
            return
        order = merge_rows([parsed for _, _, parsed, _ in group if parsed is not None])
        if order.key in self.batch:  # the same order again further down: store in order
            await self._flush()
        self.batch[order.key] = order
        if len(self.batch) >= BATCH_ORDERS:
            await self._flush()

    def _refuse(self, row_no: int, reason: str, cells: list[object]) -> None:
        counts = self.report.counts
        counts.refused += 1
        if len(counts.refusals) < SHOWN_REFUSALS:
            counts.refusals.append((row_no, reason))
        self.errors.write(row_no, reason, cells)

    async def _flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = list(self.batch.values()), {}
        try:
            stored = await store_orders(self.ctx, batch, "import")
        except IntegrityError:  # a push stored one of these orders meanwhile: look again
            logger.info("order import: a batch met an order stored meanwhile; retried")
            stored = await store_orders(self.ctx, batch, "import")
        self.batches += 1
        if self.batches in ANALYZE_AFTER:
            await analyze(Order, Purchase, Customer)
        self.report.counts.add(stored)
