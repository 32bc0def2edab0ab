"""Files sent to a member in chat (statements, exports): CSV that Excel opens, delivered
through the outbox like any message, and kept in var/ in the sandbox so a newcomer can open
them."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.pipeline.outbox import Outbox

SANDBOX_FILES = Path("var/files")
MAX_FILE_BYTES = 20 * 1024 * 1024  # WeCom's limit for a file message


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a BOM: Excel then opens the Chinese columns correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def _keep(filename: str, data: bytes) -> str:
    SANDBOX_FILES.mkdir(parents=True, exist_ok=True)
    path = SANDBOX_FILES / filename
    path.write_bytes(data)
    return str(path)


async def send_file(outbox: Outbox, userid: str, filename: str, data: bytes, *, kind: str,
                    keep: bool = False) -> str | None:
    """Queue `data` as a file message to `userid` (in the caller's transaction); with
    `keep` (the sandbox) also write it to var/files/ and return where."""
    if len(data) > MAX_FILE_BYTES:
        msg = f"file of {len(data)} bytes exceeds WeCom's {MAX_FILE_BYTES}"
        raise ValueError(msg)
    await outbox.enqueue(f"{kind}:{userid}:{uuid.uuid4().hex}", kind=kind, channel="file",
                         recipient=userid,
                         payload={"filename": filename,
                                  "content_b64": base64.b64encode(data).decode()})
    return await asyncio.to_thread(_keep, filename, data) if keep else None
