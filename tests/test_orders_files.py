"""Order files read as rows: our streaming XLSX reader gives what openpyxl gives, CSVs in
each encoding and delimiter platforms use, and files that are not what they claim."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot.store.files import FileUnreadable, open_rows


def test_xlsx_values_match_openpyxl(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["订单号", "金额", "数量", "付款时间", "日期", "是否", "空", "备注"])
    sheet.append(["3301", 1299.5, 2, datetime(2026, 11, 30, 12, 3, 44), date(2026, 11, 1),
                  True, None, "含，逗号和\n换行"])
    sheet.append(["=\"3302\"", 0.1, 10**12, datetime(1999, 12, 31, 23, 59, 59), None, False,
                  None, "x"])
    sheet.cell(row=6, column=3, value="跳过两行后")  # rows 4 and 5 left out of the file
    sheet.cell(row=7, column=2, value=time(8, 30))
    sheet.cell(row=2, column=4).number_format = "yyyy-mm-dd hh:mm:ss"
    path = tmp_path / "o.xlsx"
    book.save(path)
    ours = list(open_rows(path).rows)
    theirs = [list(r) for r in load_workbook(path, read_only=True).worksheets[0].iter_rows(
        values_only=True)]

    def trimmed(row: list[object]) -> list[object]:
        while row and row[-1] is None:
            row = row[:-1]
        return row

    assert [trimmed(r) for r in ours[:3]] == [trimmed(r) for r in theirs[:3]]
    assert ours[3] == [] and ours[4] == []  # the rows the file left out
    assert trimmed(ours[5]) == [None, None, "跳过两行后"]
    assert isinstance(ours[6][1], datetime)  # a time of day, as a date-styled number


def test_csv_in_gb18030_utf8_bom_and_tabs(tmp_path: Path) -> None:
    rows = [["订单编号", "订单状态"], ["1", "交易成功"]]
    for name, encoding, delimiter in (("gb.csv", "gb18030", ","), ("bom.csv", "utf-8-sig", ","),
                                      ("tab.txt", "utf-8", "\t")):
        path = tmp_path / name
        path.write_text("\n".join(delimiter.join(r) for r in rows), encoding=encoding)
        assert list(open_rows(path).rows) == rows


@pytest.mark.parametrize(("name", "content", "says"), [
    ("o.xlsx", b"PK\x03\x04 not really", "无法读取 XLSX"),
    ("o.xlsx", b"plain text", "无法读取 XLSX"),
    ("o.xls", b"\xd0\xcf\x11\xe0", "不支持的文件类型 .xls"),
])
def test_files_that_are_not_what_they_claim(tmp_path: Path, name: str, content: bytes,
                                             says: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FileUnreadable, match=says):
        list(open_rows(path).rows)
