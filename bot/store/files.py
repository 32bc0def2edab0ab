"""Imported files (order exports, parts lists) read as a stream of rows: CSV (UTF-8 or
GB18030, comma or tab) and XLSX (streamed from its XML, `xlsx.py`), so a 200,000-row export
never sits in memory at once; and the error file an import writes its refused rows to."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bot.store.xlsx import XlsxError, XlsxRows

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


class ErrorRows:
    """An import's error file, opened at the first refusal: 行号, 原因, then the row as it
    was (UTF-8 with a BOM, so Excel opens it)."""

    def __init__(self, path: Path, header: list[object]) -> None:
        self.path = path
        self._header = header
        self._file: IO[str] | None = None
        self._writer: Any = None

    def write(self, row_no: int, reason: str, cells: list[object]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["行号", "原因", *self._header])
        self._writer.writerow([row_no, reason, *("" if c is None else c for c in cells)])

    def close(self) -> Path | None:
        if self._file is None:
            return None
        self._file.close()
        return self.path


SHOWN_REFUSALS = 20  # refused rows an import's report lists; the error file has them all


def blank_row(cells: list[object]) -> bool:
    """A row with nothing in it (spreadsheets end with some): skipped, never refused."""
    return all(c is None or str(c).strip() == "" for c in cells)


def refusal_lines(refusals: list[tuple[int, str]], refused: int, error_file: Path | None,
                  *, with_path: bool = True) -> list[str]:
    """An import report's refused rows as staff read them: the first ones with their row
    numbers and reasons, how many more, and where the error file is (the console links it
    instead of naming its path on the server: `with_path=False`)."""
    out = [f"  第 {row} 行：{reason}" for row, reason in refusals[:SHOWN_REFUSALS]]
    if refused > SHOWN_REFUSALS:
        out.append(f"  …另有 {refused - SHOWN_REFUSALS} 行，见错误文件")
    if error_file is not None and with_path:
        out.append(f"被拒绝的行（含行号与原因）：{error_file}")
    return out
