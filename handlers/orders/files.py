"""Order files read as a stream of rows: CSV (UTF-8 or GB18030, comma or tab) and XLSX
(streamed from its XML, `xlsx.py`), so a 200,000-row export never sits in memory at once."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from handlers.orders.xlsx import XlsxError, XlsxRows

SUPPORTED = (".csv", ".txt", ".xlsx")


class FileUnreadable(Exception):
    """The file is not something we can read; the message (Chinese) says why."""


@dataclass
class RowStream:
    """Rows (lists of cell values) and how far through the file they are (0 to 1)."""

    rows: Iterator[list[object]]
    done: Callable[[], float]

    def fraction(self) -> float:
        return float(self.done())


def open_rows(path: Path) -> RowStream:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx(path)
    if suffix in (".csv", ".txt"):
        return _csv(path)
    raise FileUnreadable(f"不支持的文件类型 {suffix or '（无扩展名）'}，请导出为 CSV 或 XLSX")


def _encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the start decodes so, else GB18030 (淘宝, 京东 CSVs)."""
    head = _head(path)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "gb18030"
    return "utf-8"


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(65536)


def _csv(path: Path) -> RowStream:
    encoding = _encoding(path)
    size = max(path.stat().st_size, 1)
    raw = path.open("rb")
    text: IO[str] = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
    sample = text.read(8192)
    text.seek(0)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","

    def rows() -> Iterator[list[object]]:
        try:
            yield from csv.reader(text, delimiter=delimiter)
        except csv.Error as exc:
            raise FileUnreadable(f"CSV 格式有误：{exc}") from None
        finally:
            text.close()

    return RowStream(rows(), lambda: min(raw.tell() / size, 1.0) if not raw.closed else 1.0)


def _xlsx(path: Path) -> RowStream:
    try:
        sheet = XlsxRows(str(path))
    except XlsxError as exc:
        raise FileUnreadable(f"无法读取 XLSX 文件：{exc}") from None

    def rows() -> Iterator[list[object]]:
        try:
            yield from sheet
        except XlsxError as exc:
            raise FileUnreadable(f"XLSX 文件内容有误：{exc}") from None

    return RowStream(rows(), sheet.fraction)
