"""Order export files written the way each platform's back office writes them, for tests."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

from bot.domain.order_layouts import LAYOUTS

# One word per status for each layout (the first the layout knows for it).
WORDS = {source: {ours: word for word, ours in reversed(list(layout.statuses.items()))}
         for source, layout in LAYOUTS.items()}
REFUND_WORDS = {"taobao": "退款成功", "douyin": "退款成功", "youzan": "全额退款"}


def write_orders(path: Path, source: str, rows: list[dict[str, object]], *,
                 encoding: str = "utf-8-sig", title_rows: int = 0) -> Path:
    """`rows` use our field names (number, status, paid, buyer_phone, …); `status` is ours
    and becomes the platform's word. Columns: the layout's first name for each field used."""
    layout = LAYOUTS[source]
    used = [name for name in layout.columns if any(name in row for row in rows)]
    header = [layout.columns[name][0] for name in used]
    table: list[list[object]] = [["导出时间：2026-11-30"] for _ in range(title_rows)]
    table.append(header)
    for row in rows:
        cells = []
        for name in used:
            value = row.get(name, "")
            if name == "status" and value in WORDS[source]:
                value = WORDS[source][str(value)]
            cells.append(value)
        table.append(cells)
    if path.suffix == ".xlsx":
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        for cells in table:
            sheet.append(cells)
        book.save(path)
    else:
        with path.open("w", encoding=encoding, newline="") as f:
            csv.writer(f).writerows(table)
    return path
