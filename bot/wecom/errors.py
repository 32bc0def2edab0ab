"""Typed WeCom errors, so callers branch on a class or an errcode, never on errmsg text.

WeCom answers HTTP 200 with a non-zero ``errcode`` for API failures; the class tells the
client what to do about it (refetch the token, back off, or give up) and tells features what
happened (`NOT_EXTERNAL_CONTACT`, `WELCOME_CODE_EXPIRED`, ...).
"""

from __future__ import annotations

# --- error codes features test for (WeCom doc 90313) --------------------------------------------

OK = 0
SYSTEM_BUSY = -1
INVALID_CREDENTIAL = 40001  # bad secret/corpid on gettoken; a bad token on other calls
INVALID_USERID = 40003
INVALID_MEDIA_ID = 40007  # temporary media lives 3 days
INVALID_ACCESS_TOKEN = 40014
INVALID_PARAMETER = 40058
INVALID_TAG_ID = 40068
TAG_NAME_EXISTS = 40071
INVALID_EXTERNAL_USERID = 40096
ACCESS_TOKEN_MISSING = 41001
CONTACT_WAY_TOO_MANY_USERS = 41041
CONTACT_WAY_QUOTA_REACHED = 41045
WELCOME_CODE_EXPIRED = 41050
WELCOME_CODE_USED = 41051
ACCESS_TOKEN_EXPIRED = 42001
FREQUENCY_LIMITED = 45009
CONCURRENCY_LIMITED = 45033
API_NOT_ALLOWED = 48002
OUT_OF_VISIBLE_RANGE = 60011
IP_NOT_TRUSTED = 60020
USERID_NOT_FOUND = 60111
ALL_RECIPIENTS_INVALID = 81013
NOT_EXTERNAL_CONTACT = 84061
NO_EXTERNAL_CONTACT_PERMISSION = 84074
AGENT_MISMATCH = 301002

AUTH_ERRCODES = frozenset({INVALID_CREDENTIAL, INVALID_ACCESS_TOKEN, ACCESS_TOKEN_EXPIRED,
                           ACCESS_TOKEN_MISSING})
RATE_LIMIT_ERRCODES = frozenset({SYSTEM_BUSY, FREQUENCY_LIMITED, CONCURRENCY_LIMITED})
CONTENT_TOO_LONG = 45002
OA_WINDOW_CLOSED = 45015
# Errors about the message itself (its recipient, its content): sending it again cannot
# succeed. Anything else (throttling, a trusted IP not yet in effect, a secret being fixed)
# is worth retrying with backoff.
PERMANENT_ERRCODES = frozenset({
    INVALID_USERID, INVALID_PARAMETER, INVALID_TAG_ID, INVALID_EXTERNAL_USERID,
    WELCOME_CODE_EXPIRED, WELCOME_CODE_USED, CONTENT_TOO_LONG, OA_WINDOW_CLOSED,
    OUT_OF_VISIBLE_RANGE, USERID_NOT_FOUND, ALL_RECIPIENTS_INVALID, NOT_EXTERNAL_CONTACT})


class WeComError(Exception):
    """A failed WeCom call: ``errcode`` (None if WeCom never answered), ``errmsg``, ``endpoint``.

    ``str(exc)`` reads like ``"externalcontact/mark_tag: 84061 not external contact"``.
    """

    def __init__(self, errcode: int | None, errmsg: str, endpoint: str) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint
        code = "" if errcode is None else f"{errcode} "
        super().__init__(f"{endpoint}: {code}{errmsg}")


class WeComAuthError(WeComError):
    """Token or credential problem (40001, 40014, 42001, 41001).

    The client already refetched the token once where that can help, so this means a bad
    secret, a revoked app, or a bug.
    """


class WeComRateLimited(WeComError):
    """WeCom is busy or throttling (-1, 45009, 45033), or our own member limiter gave up.

    ``retry_after`` is a hint in seconds when one is known (the limiter knows; WeCom does not
    say).
    """

    def __init__(self, errcode: int | None, errmsg: str, endpoint: str, *,
                 retry_after: float | None = None) -> None:
        super().__init__(errcode, errmsg, endpoint)
        self.retry_after = retry_after


class WeComBudgetShort(WeComRateLimited):
    """scrmbot did not call: the API's corp-wide budget has no room at this priority now, or
    WeCom blocked the API (45009) and every instance waits out the window. Nothing reached
    WeCom, so the work is put off for ``retry_after`` seconds, not counted as a failure."""

    def __init__(self, endpoint: str, retry_after: float, *, paused: bool) -> None:
        why = "paused after 45009" if paused else "budget short"
        super().__init__(FREQUENCY_LIMITED if paused else None,
                         f"{why}: room in {retry_after:.1f} s", endpoint,
                         retry_after=retry_after)
        self.paused = paused


class WeComHTTPError(WeComError):
    """No usable WeCom answer: connection failure, timeout, non-200 status, or non-JSON body.

    ``errcode`` is always None. ``status`` is the HTTP status if a response arrived.
    ``maybe_processed`` is True when the request may have reached WeCom (so a non-idempotent
    call may have taken effect); False only when the connection was never made.
    """

    def __init__(self, errmsg: str, endpoint: str, *, status: int | None = None,
                 maybe_processed: bool = True) -> None:
        super().__init__(None, errmsg, endpoint)
        self.status = status
        self.maybe_processed = maybe_processed


def error_for(errcode: int, errmsg: str, endpoint: str) -> WeComError:
    """The typed error for a non-zero WeCom ``errcode``."""
    if errcode in AUTH_ERRCODES:
        return WeComAuthError(errcode, errmsg, endpoint)
    if errcode in RATE_LIMIT_ERRCODES:
        return WeComRateLimited(errcode, errmsg, endpoint)
    return WeComError(errcode, errmsg, endpoint)
