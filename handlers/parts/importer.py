"""Parts files imported: the catalogue and a stocktake in one file, one row per part and
warehouse. A row **sets** what is on hand in that warehouse (a count, not a delivery); the
stock log records the difference. Running the same file again changes nothing. Refused rows
go to an error file with their row number and reason, as order imports do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.domain.parts import (
    PartDataError,
    PartRow,
    read_header,
    read_part_row,
    stocktake_delta,
)
from bot.store.db import atomic
from bot.store.files import (
    ErrorRows,
    FileUnreadable,
    blank_row,
    open_rows,
    refusal_lines,
)
from handlers.parts.service import after_stocktake, log_movement
from models import Part, Stock

BATCH_ROWS = 500  # rows per transaction


@dataclass
class PartImportReport:
    rows: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)
    error_file: Path | None = None
    seconds: float = 0.0

    def lines(self, *, with_path: bool = True) -> list[str]:
        out = [f"导入完成：读取 {self.rows} 行。",
               f"新增 {self.new} 条，更新 {self.updated} 条，未变跳过 {self.unchanged} 条，"
               f"拒绝 {self.refused} 行。"]
        return out + refusal_lines(self.refusals, self.refused, self.error_file,
                                   with_path=with_path)


async def import_parts(ctx: BotContext, path: Path, *, started_by: str = "") -> PartImportReport:
    """Import one parts file. Refusal for a file we cannot take at all (unreadable, wrong
    header); a bad row is counted and written to the error file, not raised."""
    if not await asyncio.to_thread(path.is_file):
        raise Refusal(f"找不到文件 {path}")
    try:
        rows: Iterator[tuple[int, list[object]]] = enumerate(open_rows(path).rows, 1)
        header_cells: list[object] = []
        for _, cells in rows:
            if not blank_row(cells):
                header_cells = cells
                break
        header = read_header(header_cells)
    except (FileUnreadable, PartDataError) as exc:
        raise Refusal(str(exc)) from None
    stamp = ctx.clock.now().astimezone(ctx.settings.tz).strftime("%Y%m%d-%H%M%S")
    errors = ErrorRows(Path(ctx.settings.data_dir) / "imports" /
                       f"parts-{stamp}-{path.stem}-错误行.csv", header_cells)
    report = PartImportReport()
    started = time.monotonic()
    known = [w.name for w in ctx.rules.current.warehouses]
    seen: dict[tuple[str, str], int] = {}
    batch: list[tuple[int, list[object], PartRow]] = []
    try:
        for row_no, cells in rows:
            if blank_row(cells):
                continue
            report.rows += 1
            try:
                row = read_part_row(header, cells, known)
            except PartDataError as exc:
                _refuse(report, errors, row_no, str(exc), cells)
                continue
            first = seen.setdefault((row.sku.lower(), row.warehouse), row_no)
            if first != row_no:
                _refuse(report, errors, row_no, f"与第 {first} 行的 SKU 和仓库重复", cells)
                continue
            batch.append((row_no, cells, row))
            if len(batch) >= BATCH_ROWS:
                await _store(ctx, batch, report, errors, started_by)
                batch = []
        await _store(ctx, batch, report, errors, started_by)
    except FileUnreadable as exc:
        raise Refusal(str(exc)) from None
    finally:
        report.error_file = errors.close()
        report.seconds = time.monotonic() - started
    return report


def _refuse(report: PartImportReport, errors: ErrorRows, row_no: int, reason: str,
            cells: list[object]) -> None:
    report.refused += 1
    report.refusals.append((row_no, reason))
    errors.write(row_no, reason, cells)


async def _store(ctx: BotContext, rows: list[tuple[int, list[object], PartRow]],
                 report: PartImportReport, errors: ErrorRows, actor: str) -> None:
    """One transaction: each row's part upserted and its stock counted."""
    if not rows:
        return
    now = ctx.clock.now()
    async with atomic():
        for row_no, cells, row in rows:
            part = await Part.get_or_none(sku=row.sku)
            stock = None if part is None else await Stock.filter(
                part=part, warehouse=row.warehouse).select_for_update().first()
            if stock is not None and stock.reserved > row.on_hand:  # refused: nothing changes
                _refuse(report, errors, row_no, f"库存 {row.on_hand} 少于工单已预留的 "
                                                f"{stock.reserved}，请先核对或释放预留", cells)
                continue
            fields: dict[str, Any] = {"name": row.name, "unit": row.unit, "cost_fen": row.cost_fen,
                                      "reorder_level": row.reorder_level,
                                      "category": row.category}
            part_changed = part is None or any(getattr(part, k) != v for k, v in fields.items())
            if part is None:
                part = await Part.create(sku=row.sku, updated_at=now, **fields)
            elif part_changed:
                await Part.filter(id=part.id).update(updated_at=now, **fields)
                await part.refresh_from_db()
            if stock is None:
                stock = await Stock.create(part=part, warehouse=row.warehouse,
                                           on_hand=row.on_hand, counted_at=now)
                report.new += 1
                delta = stocktake_delta(None, row.on_hand)
            else:
                delta = stocktake_delta(stock.on_hand, row.on_hand)
                if delta or part_changed:
                    report.updated += 1
                else:
                    report.unchanged += 1
                if delta:
                    await Stock.filter(id=stock.id).update(on_hand=row.on_hand, counted_at=now)
                    stock.on_hand = row.on_hand
            if delta:
                await log_movement(ctx, stock, "import", on_hand=delta, actor=actor,
                                   note="盘点导入")
            await after_stocktake(ctx, part, stock)
