"""Writing to the audit log (one function, so every caller records the same fields)."""

from __future__ import annotations

from bot.domain.clock import Clock
from models import AuditEntry


async def record(clock: Clock, actor: str, action: str, arguments: str, outcome: str,
                 detail: str = "") -> AuditEntry:
    return await AuditEntry.create(at=clock.now(), actor=actor, action=action[:64],
                                   arguments=arguments, outcome=outcome, detail=detail[:2000])
