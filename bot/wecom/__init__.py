"""The WeCom API client: typed errors, shared token cache, member message limits."""

from __future__ import annotations

from bot.wecom import errors
from bot.wecom.client import JSON, WeComClient
from bot.wecom.errors import (
    WeComAuthError,
    WeComError,
    WeComHTTPError,
    WeComRateLimited,
    error_for,
)
from bot.wecom.ratelimit import DEFAULT_LIMITS, MemberRateLimiter
from bot.wecom.tokens import TokenCache, TokenFetcher

__all__ = [
    "DEFAULT_LIMITS",
    "JSON",
    "MemberRateLimiter",
    "TokenCache",
    "TokenFetcher",
    "WeComAuthError",
    "WeComClient",
    "WeComError",
    "WeComHTTPError",
    "WeComRateLimited",
    "error_for",
    "errors",
]
