"""The two encodings of a table: CSV with a BOM and formula-looking text defused, XLSX with
the same cells, written through lxml (openpyxl's fast path)."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from openpyxl.xml import LXML

from bot.web.exports import Table, csv_bytes, xlsx_bytes

TABLE = Table("客户", ("姓名", "金额", "备注"),
              [["王女士", 12, "=HYPERLINK(\"http://x\")"], ["李先生", 3.5, "+86 138"],
               ["赵六", None, "普通"]])


def test_csv_has_a_bom_and_defuses_formulas() -> None:
    body = csv_bytes(TABLE)
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows == [["姓名", "金额", "备注"], ["王女士", "12", "'=HYPERLINK(\"http://x\")"],
                    ["李先生", "3.5", "'+86 138"], ["赵六", "", "普通"]]


def test_xlsx_holds_the_same_cells_with_numbers_as_numbers() -> None:
    sheet = load_workbook(io.BytesIO(xlsx_bytes(TABLE))).active
    assert sheet is not None and sheet.title == "客户"
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["姓名", "金额", "备注"], ["王女士", 12, "'=HYPERLINK(\"http://x\")"],
        ["李先生", 3.5, "'+86 138"], ["赵六", None, "普通"]]


def test_openpyxl_writes_through_lxml() -> None:
    assert LXML, "lxml is a dependency (pyproject.toml): without it XLSX exports halve in speed"
