"""Every figure on a board can be taken away as CSV or XLSX: one table, two encodings.

CSV is UTF-8 with a byte-order mark, which is what Excel on a Chinese Windows needs to show
Chinese instead of mojibake; XLSX is written with openpyxl in write-only mode, so a long
export streams rows instead of building a workbook in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web
from openpyxl import Workbook

FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    """A figure as rows: what the page draws and what the export holds are the same rows."""

    title: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Cell]] = field(default_factory=list)


def csv_bytes(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.columns)
    writer.writerows(_safe(row) for row in table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _safe(row: Iterable[Cell]) -> list[Cell]:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is quoted with '."""
    return [f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c
            for c in row]


def xlsx_bytes(table: Table) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=table.title[:31] or "Sheet1")
    sheet.append(list(table.columns))
    for row in table.rows:
        sheet.append(_safe(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export_response(table: Table, fmt: str, filename: str) -> web.Response:
    """`table` as a download named `filename`.csv / .xlsx (`fmt` must be in FORMATS)."""
    if fmt == "csv":
        body, content_type = csv_bytes(table), "text/csv"
    elif fmt == "xlsx":
        body, content_type = xlsx_bytes(table), XLSX_TYPE
    else:
        raise web.HTTPNotFound(text="导出格式只能是 csv 或 xlsx")
    name = f"{filename}.{fmt}"
    headers = {"Content-Disposition": f"attachment; filename=\"export.{fmt}\"; "
                                      f"filename*=UTF-8''{quote(name)}",
               "Cache-Control": "no-store"}
    return web.Response(body=body, content_type=content_type, charset="utf-8"
                        if fmt == "csv" else None, headers=headers)
