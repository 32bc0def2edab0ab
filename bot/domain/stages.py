"""Ticket stages: a pipeline per ticket type, walked one step at a time. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta


@dataclass(frozen=True)
class Stage:
    name: str
    role: str = "editor"  # the role needed to complete it
    limit: timedelta | None = None
    inserted: bool = False
    skipped: bool = False
    done: bool = False
    photos: int = 0  # photos needed to complete it (拍照验收), from the type's photo field
    photo_label: str = ""  # that field's name: 验收照片

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role,
                "limit_s": int(self.limit.total_seconds()) if self.limit else None,
                "inserted": self.inserted, "skipped": self.skipped, "done": self.done,
                "photos": self.photos, "photo_label": self.photo_label}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Stage:
        limit = data.get("limit_s")
        return cls(name=str(data["name"]), role=str(data.get("role", "editor")),
                   limit=timedelta(seconds=int(limit)) if isinstance(limit, int) else None,
                   inserted=bool(data.get("inserted")), skipped=bool(data.get("skipped")),
                   done=bool(data.get("done")), photos=int(str(data.get("photos") or 0)),
                   photo_label=str(data.get("photo_label") or ""))


class StageError(ValueError):
    """A stage move that is not allowed (the message says why, in Chinese, for chat)."""


def advance(stages: tuple[Stage, ...], current: int, *, skip: bool = False
            ) -> tuple[tuple[Stage, ...], int]:
    """Complete (or skip) the current stage; returns the new pipeline and index.

    The index equals len(stages) once the last stage is done.
    """
    if current < 0:
        raise StageError(f"阶段序号 {current} 无效。")
    if current >= len(stages):
        raise StageError("所有阶段都已完成。")
    done = replace(stages[current], done=not skip, skipped=skip)
    updated = (*stages[:current], done, *stages[current + 1:])
    return updated, current + 1


def insert_emergency(stages: tuple[Stage, ...], current: int, stage: Stage
                     ) -> tuple[Stage, ...]:
    """Insert an emergency stage that becomes current now; the interrupted stage follows it."""
    if current < 0:
        raise StageError(f"阶段序号 {current} 无效。")
    if current >= len(stages):
        raise StageError("工单的阶段已全部完成，不能再插入阶段。")
    if any(s.name == stage.name and not s.done for s in stages[current:]):
        raise StageError(f"阶段 {stage.name} 已在待办中。")
    return (*stages[:current], replace(stage, inserted=True), *stages[current:])
