"""Customer transfers (在职继承 / 离职继承) as WeCom runs them: checks, the 24 h wait, outcomes.

A submitted transfer waits 24 h of simulator time; then it is decided (taken over, refused,
over the takeover's limit, or the relationship was gone). Deciding queues the callbacks WeCom
would send in `state.pending_callbacks`; the server sends them (`WeComSimulator.settle_transfers`).
Everything here works on the state only, so API handlers can settle lazily.
"""

from __future__ import annotations

from datetime import date, datetime

from bot.devtools.simulator.state import (
    CORP_TZ,
    TRANSFER_WAIT_S,
    Follow,
    FollowStatus,
    PendingCallback,
    SimState,
    Transfer,
)

DONE, WAITING, REFUSED, LIMIT_EXCEEDED, NO_RELATIONSHIP = 1, 2, 3, 4, 5
IN_SERVICE_MAX_PER_90_DAYS = 2  # 在职继承: each customer at most twice in 90 natural days
COUNTED_FOR_90_DAYS = {DONE, WAITING, REFUSED}
DELETED = {FollowStatus.DELETED_BY_STAFF, FollowStatus.DELETED_BY_CUSTOMER}


def has_relationship(follow: Follow | None, resigned: bool) -> bool:
    """Whether the handover still has the customer: active for 在职, not deleted for 离职."""
    if follow is None:
        return False
    return follow.status not in DELETED if resigned else follow.status == FollowStatus.ACTIVE


def due_at(transfer: Transfer) -> float:
    return transfer.created_at + TRANSFER_WAIT_S


def waiting_for(state: SimState, handover: str, external_userid: str) -> Transfer | None:
    """The waiting transfer of this handover's relationship, if one is in progress."""
    return next((t for t in state.transfers if t.status == WAITING
                 and (t.handover_userid, t.external_userid) == (handover, external_userid)),
                None)


def _corp_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, CORP_TZ).date()


def too_frequent(state: SimState, external_userid: str) -> bool:
    """40128: the customer already had two in-service transfers in the last 90 natural days
    (corp time zone); refused ones count, as in WeCom."""
    today = _corp_day(state.timestamp())
    recent = [t for t in state.transfers
              if t.external_userid == external_userid and not t.resigned
              and t.status in COUNTED_FOR_90_DAYS
              and (today - _corp_day(t.created_at)).days < 90]
    return len(recent) >= IN_SERVICE_MAX_PER_90_DAYS


def at_limit(state: SimState, takeover: str, *, count_waiting: bool) -> bool:
    """Whether the takeover cannot take one more customer (`state.customer_limits`).

    At submission the customers already on their way (waiting transfers) count too.
    """
    limit = state.customer_limits.get(takeover)
    if limit is None:
        return False
    held = len(state.customers_of(takeover, {FollowStatus.ACTIVE}))
    if count_waiting:
        held += sum(1 for t in state.transfers
                    if t.takeover_userid == takeover and t.status == WAITING)
    return held >= limit


def complete_transfer(state: SimState, transfer: Transfer, at: int) -> None:
    """Move the customer from the handover to the takeover member (tags and notes follow)."""
    transfer.status, transfer.takeover_time = DONE, at
    old = state.follow(transfer.handover_userid, transfer.external_userid)
    tags = list(old.tag_ids) if old else []
    if old is not None:
        old.status = FollowStatus.DELETED_BY_STAFF
    key = (transfer.takeover_userid, transfer.external_userid)
    state.follows[key] = Follow(transfer.takeover_userid, transfer.external_userid,
                                FollowStatus.ACTIVE, at, state=old.state if old else None,
                                add_way=202, oper_userid=transfer.takeover_userid,
                                remark_mobiles=list(old.remark_mobiles) if old else [],
                                tag_ids=tags)


def success_callbacks(transfer: Transfer) -> list[PendingCallback]:
    """What WeCom sends when a transfer is taken: the handover loses the customer (在职 only,
    with Source=DELETE_BY_TRANSFER), then the takeover gains it (no State, no WelcomeCode)."""
    callbacks: list[PendingCallback] = []
    if not transfer.resigned:
        callbacks.append(("del_external_contact", transfer.handover_userid,
                          transfer.external_userid, {"source": "DELETE_BY_TRANSFER"}))
    callbacks.append(("add_external_contact", transfer.takeover_userid,
                      transfer.external_userid, {}))
    return callbacks


def fail_callback(transfer: Transfer, reason: str) -> PendingCallback:
    """`transfer_fail` goes to the takeover member with `customer_refused` or
    `customer_limit_exceed`."""
    return ("transfer_fail", transfer.takeover_userid, transfer.external_userid,
            {"fail_reason": reason})


def fail_transfer(transfer: Transfer, status: int) -> None:
    """End a transfer without a takeover (status 3, 4 or 5): no takeover time."""
    transfer.status, transfer.takeover_time = status, 0


def decide(state: SimState, transfer: Transfer) -> list[PendingCallback]:
    """Decide a due transfer now and return the callbacks it implies."""
    follow = state.follow(transfer.handover_userid, transfer.external_userid)
    if not has_relationship(follow, transfer.resigned):
        fail_transfer(transfer, NO_RELATIONSHIP)  # the customer left meanwhile: 无接替记录
        return []
    if transfer.external_userid in state.refusing:
        fail_transfer(transfer, REFUSED)
        return [fail_callback(transfer, "customer_refused")]
    if at_limit(state, transfer.takeover_userid, count_waiting=False):
        fail_transfer(transfer, LIMIT_EXCEEDED)
        return [fail_callback(transfer, "customer_limit_exceed")]
    complete_transfer(state, transfer, int(due_at(transfer)))
    return success_callbacks(transfer)


def settle_transfers(state: SimState) -> list[Transfer]:
    """Decide every waiting transfer whose 24 h are over, oldest first; their callbacks are
    queued in `state.pending_callbacks`. Returns the transfers decided."""
    now = state.timestamp()
    due = sorted((t for t in state.transfers if t.status == WAITING and now >= due_at(t)),
                 key=due_at)
    for transfer in due:
        state.pending_callbacks.extend(decide(state, transfer))
    return due


def latest_per_customer(transfers: list[Transfer]) -> list[Transfer]:
    """One transfer per customer, the latest, in the order customers were first transferred."""
    latest: dict[str, Transfer] = {}
    for transfer in transfers:
        latest[transfer.external_userid] = transfer
    return list(latest.values())


def unassigned(state: SimState) -> list[tuple[str, str, int]]:
    """Customers of resigned members still waiting for a new owner:
    (handover_userid, external_userid, dimission_time)."""
    rows = []
    for member in state.members.values():
        if member.status != 5:
            continue
        for ext in state.customers_of(member.userid, {FollowStatus.ACTIVE}):
            if not any(t.handover_userid == member.userid and t.external_userid == ext
                       and t.status in (DONE, WAITING) for t in state.transfers):
                rows.append((member.userid, ext, state.resigned_at.get(member.userid, 0)))
    return rows
