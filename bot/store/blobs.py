"""Where scrmbot keeps files it must not lose (ticket photos): a local directory by default,
an S3-compatible bucket by configuration.

Both stores take keys like `T-20261125-0001/<sha256>.jpg` and write them whole; a key named
by its content's hash can be written twice with the same bytes, so a retried upload is
harmless. The S3 store signs its requests with AWS Signature Version 4 over the shared
aiohttp session (a PUT, a GET and a DELETE are all it needs; no SDK).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import aiohttp


class BlobError(Exception):
    """A store that could not write or read a file (worth retrying later)."""


class BlobStore(Protocol):
    """Whole files by key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, key: str) -> None: ...


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        msg = f"invalid blob key {key!r}"
        raise ValueError(msg)
    return key


class LocalStore:
    """Files under `root` (e.g. `var/photos`), written to a temporary file and renamed, so a
    reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except OSError as exc:
            raise BlobError(f"cannot write {target}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        target = self.path(key)
        return target.read_bytes() if target.is_file() else None

    async def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Config:
    """`SCRM_PHOTO_STORE=s3://bucket/prefix` with its endpoint and keys."""

    bucket: str
    prefix: str
    endpoint: str  # https://s3.example.com (path-style requests: endpoint/bucket/key)
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        msg = f"expected s3://bucket/prefix, got {url!r}"
        raise ValueError(msg)
    return parts.netloc, parts.path.strip("/")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(config: S3Config, method: str, path: str, body: bytes, now: datetime,
                  extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of a SigV4-signed request for `path` (already URI-encoded), no query."""
    host = urlsplit(config.endpoint).netloc
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp,
               **{k.lower(): v for k, v in (extra or {}).items()}}
    names = sorted(headers)
    canonical = "\n".join([method, path, "", *(f"{n}:{headers[n].strip()}" for n in names),
                           "", ";".join(names), payload_hash])
    scope = f"{day}/{config.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{config.secret_key}".encode(), day), config.region),
                      "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={config.access_key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    del headers["host"]  # aiohttp sends it; it was signed as it will be sent
    return headers


class S3Store:
    """An S3-compatible bucket (AWS, MinIO, OSS, COS …), path-style, SigV4-signed."""

    def __init__(self, session: aiohttp.ClientSession, config: S3Config,
                 timeout_s: float = 30.0) -> None:
        self._session = session
        self.config = config
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _path(self, key: str) -> str:
        full = "/".join(p for p in (self.config.prefix, _safe_key(key)) if p)
        return "/" + quote(self.config.bucket) + "/" + quote(full, safe="/-_.~")

    async def _request(self, method: str, key: str, body: bytes = b"",
                       extra: dict[str, str] | None = None) -> tuple[int, bytes]:
        path = self._path(key)
        headers = sigv4_headers(self.config, method, path, body, datetime.now(UTC), extra)
        url = self.config.endpoint.rstrip("/") + path
        try:
            async with self._session.request(method, url, data=body or None, headers=headers,
                                             timeout=self._timeout) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BlobError(f"S3 {method} {key}: {type(exc).__name__}") from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        status, answer = await self._request("PUT", key, data,
                                             {"content-type": content_type})
        if status != 200:
            raise BlobError(f"S3 PUT {key}: HTTP {status} {answer[:200]!r}")

    async def get(self, key: str) -> bytes | None:
        status, answer = await self._request("GET", key)
        if status == 404:
            return None
        if status != 200:
            raise BlobError(f"S3 GET {key}: HTTP {status}")
        return answer

    async def delete(self, key: str) -> None:
        status, _ = await self._request("DELETE", key)
        if status not in (200, 204, 404):
            raise BlobError(f"S3 DELETE {key}: HTTP {status}")
