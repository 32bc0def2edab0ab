"""Handing customers over (在职继承 and 离职继承) as pure decisions: what each WeCom answer
means for a customer, what staff are told to do about it, the batches WeCom takes, when a
waiting transfer is asked about again, and when the rules file's default takes over for a
member who left and nobody acted.

A customer's handover walks: 待提交 (queued) → 等待接替 (WeCom accepted; the customer is taken
over 24 hours later unless they refuse) → 接替完毕 | 客户拒绝 | 接替成员客户达到上限 | 无接替记录,
or 提交失败 when WeCom refused it at once (the errcode says why).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

QUEUED, WAITING, TAKEN, REFUSED, LIMIT, NONE, FAILED = (
    "queued", "waiting", "taken", "refused", "limit", "none", "failed")
STATUS_NAMES = {QUEUED: "待提交", WAITING: "等待接替", TAKEN: "接替完毕", REFUSED: "客户拒绝",
                LIMIT: "接替成员客户达到上限", NONE: "无接替记录", FAILED: "提交失败"}
FINAL = frozenset({TAKEN, REFUSED, LIMIT, NONE, FAILED})
OPEN = frozenset({QUEUED, WAITING})
IN_SERVICE, RESIGNED = "in_service", "resigned"
KIND_NAMES = {IN_SERVICE: "在职继承", RESIGNED: "离职继承"}
BATCH = 100  # customers per transfer_customer call, as WeCom allows
MAX_MESSAGE = 200  # characters of the message a customer sees (在职继承)
# transfer_result's status → ours
RESULT_STATUS = {1: TAKEN, 2: WAITING, 3: REFUSED, 4: LIMIT, 5: NONE}
ALREADY_TRANSFERRING = frozenset({40100, 40129})  # WeCom has the transfer already: waiting

# What staff read for each refusal at submission, and what to do about it.
SUBMIT_ERRORS = {
    40096: "企业微信不认识这位客户（外部联系人 ID 无效）",
    40097: "原员工尚未离职，不能用离职继承：请改用在职继承",
    40098: "接替成员尚未实名认证，请其先在企业微信完成实名认证",
    40099: "接替成员的客户数已达上限：请换一位接替成员",
    40128: "客户转接过于频繁：90 天内每位客户最多在职转接 2 次，请到期后再试或改由原员工继续跟进",
    40130: "原跟进人与接替人相同",
    40131: "原员工不是这位客户的跟进人（客户可能已删除原员工）",
    40143: "接替成员已被封禁，无法接替客户",
    84061: "原员工与这位客户已没有好友关系",
    60111: "企业微信找不到该成员（可能已离职）：离职员工的客户请用离职继承，"
           "scrmbot 收到离职通知后会自动改用",
}
ADVICE = {
    REFUSED: "客户拒绝了接替：在职继承时客户仍由原员工跟进；可先与客户沟通，再换一位成员转接"
             "（90 天内每位客户最多转接 2 次）。",
    LIMIT: "接替成员的客户数已达上限：请换一位接替成员，或为其清理客户后重新转接。",
    NONE: "企业微信没有这位客户的接替记录（客户可能已删除原员工）：客户重新添加后可再转接。",
    FAILED: "企业微信拒绝了这次转接，原因见上；处理后可重新发起 /handover。",
}

T = TypeVar("T")


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """`items` in WeCom-sized batches, in order."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def after_submit(errcode: int) -> str:
    """A customer's status once transfer_customer answered for them."""
    if errcode == 0 or errcode in ALREADY_TRANSFERRING:
        return WAITING
    return FAILED


def submit_reason(errcode: int) -> str:
    return SUBMIT_ERRORS.get(errcode, f"企业微信错误码 {errcode}")


def after_result(status: int) -> str:
    """Our status for transfer_result's `status` (an unknown code stays waiting)."""
    return RESULT_STATUS.get(status, WAITING)


POLL_EVERY = timedelta(hours=1)  # a waiting transfer is asked about at least this often
TAKEOVER_DELAY = timedelta(hours=24)  # WeCom takes the customer over this long after


def poll_due(submitted_at: datetime, checked_at: datetime | None, now: datetime) -> bool:
    """Ask WeCom about a waiting transfer: right after its 24 hours are up, then hourly
    (a refusal can come any time before)."""
    if checked_at is None:
        return True
    due = submitted_at + TAKEOVER_DELAY
    if checked_at < due <= now:
        return True
    return now - checked_at >= POLL_EVERY


@dataclass(frozen=True)
class DefaultRule:
    """[handover]: who takes a departed member's customers when nobody acts, and when."""

    takeover: str = "region_manager"  # or a member's userid
    remind_after: timedelta = timedelta(days=1)
    takeover_after: timedelta = timedelta(days=3)
    message: str = "您好，您的专属顾问已变更，后续将由新的顾问继续为您服务。"


def departure_step(left_at: datetime, now: datetime, rule: DefaultRule, *, reminded: bool,
                   handed_over: bool) -> str | None:
    """What the default does for a member who left at `left_at`: "remind" (once, from
    remind_after), then "handover" (from takeover_after), else None."""
    if handed_over:
        return None
    if now >= left_at + rule.takeover_after:
        return "handover"
    if not reminded and now >= left_at + rule.remind_after:
        return "remind"
    return None


def summary(counts: dict[str, int]) -> str:
    """Counts by status, as staff read them, in walking order."""
    order = (TAKEN, WAITING, QUEUED, REFUSED, LIMIT, NONE, FAILED)
    return "，".join(f"{STATUS_NAMES[s]} {counts[s]}" for s in order if counts.get(s))
