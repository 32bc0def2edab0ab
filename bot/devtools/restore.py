"""The sandbox's simulated corp restored from scrmbot's database at start-up.

The sandbox keeps its database (`var/sandbox.db`) across restarts, but the WeCom simulator
lives in memory. A real corp would still hold what scrmbot created in it, so on start the
simulator gets back, with the same ids: the corp tags in the mirror, the channels' contact
ways, the customers with their relationships and tags, and the Official Account followers'
last messages. Quitting and `make run` again then works as with a real WeCom.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.devtools.simulator import FollowStatus, WeComSimulator
from bot.devtools.simulator.oa import OASimulator
from bot.devtools.simulator.state import ContactWay, ExternalContact, Follow, Tag, TagGroup
from models import Channel, CorpTag, Customer, CustomerTag, FollowRelation

_STATUSES = {"half": FollowStatus.HALF, "active": FollowStatus.ACTIVE,
             "deleted_by_staff": FollowStatus.DELETED_BY_STAFF,
             "deleted_by_customer": FollowStatus.DELETED_BY_CUSTOMER}


@dataclass(frozen=True)
class Restored:
    tags: int
    ways: int
    customers: int
    followers: int

    def __str__(self) -> str:
        return (f"{self.tags} corp tags, {self.ways} channels, {self.customers} customers, "
                f"{self.followers} Official Account followers")


async def restore_corp(sim: WeComSimulator, oa: OASimulator | None = None) -> Restored:
    """Put back into `sim` (and `oa`) what the database says WeCom holds."""
    state = sim.state
    tags = 0
    for row in await CorpTag.filter(deleted=False).order_by("id"):
        tags += _restore_tag(sim, row)
    ways = 0
    for channel in await Channel.filter(active=True, config_id__isnull=False).order_by("id"):
        assert channel.config_id is not None
        if channel.config_id not in state.contact_ways:
            state.contact_ways[channel.config_id] = ContactWay(
                config_id=channel.config_id, type=1 if channel.is_temp else 2, scene=2,
                created_at=channel.created_at.timestamp(), remark=channel.name[:30],
                state=channel.state, user=list(channel.staff), is_temp=channel.is_temp,
                qr_code=channel.qr_code or None)
            ways += 1
    customers = await _restore_contacts(sim)
    followers = 0
    if oa is not None:
        for customer in await Customer.filter(openid__isnull=False,
                                              oa_last_seen_at__isnull=False):
            assert customer.openid is not None and customer.oa_last_seen_at is not None
            oa.last_interaction.setdefault(customer.openid,
                                           customer.oa_last_seen_at.timestamp())
            followers += 1
    return Restored(tags, ways, customers, followers)


def _restore_tag(sim: WeComSimulator, row: CorpTag) -> int:
    """Our mirror's ids win: the demo corp was just loaded with fresh random ids for the
    same groups and names, which scrmbot's database does not know."""
    state = sim.state
    group = state.tag_groups.get(row.group_id) or state.group_by_name(row.group_name)
    if group is None:
        group = TagGroup(row.group_id, row.group_name, state.unix())
        state.tag_groups[group.group_id] = group
    elif group.group_id != row.group_id:
        del state.tag_groups[group.group_id]
        group.group_id = row.group_id
        for tag in group.tags:
            tag.group_id = row.group_id
        state.tag_groups[group.group_id] = group
    same = next((t for t in group.tags if t.name == row.name and not t.deleted), None)
    if same is not None and same.id == row.tag_id:
        return 0
    if same is not None:
        del state.tags[same.id]
        same.id = row.tag_id
    else:
        same = Tag(row.tag_id, row.name, group.group_id, state.unix())
        group.tags.append(same)
    state.tags[same.id] = same
    return 1


async def _restore_contacts(sim: WeComSimulator) -> int:
    state = sim.state
    restored = 0
    customers = await Customer.filter(external_userid__isnull=False).order_by("id")
    tag_ids: dict[int, list[str]] = {}
    for row in await CustomerTag.filter(synced=True, tag_id__isnull=False):
        tag_ids.setdefault(row.customer_id, []).append(str(row.tag_id))  # type: ignore[attr-defined]
    relations: dict[int, list[FollowRelation]] = {}
    for relation in await FollowRelation.all():
        relations.setdefault(relation.customer_id, []).append(relation)  # type: ignore[attr-defined]
    for customer in customers:
        ext = str(customer.external_userid)
        if ext in state.contacts:
            continue
        state.contacts[ext] = ExternalContact(ext, customer.name, type=customer.type,
                                              gender=customer.gender, avatar=customer.avatar,
                                              unionid=customer.unionid, mobile=customer.mobile)
        mine = relations.get(customer.id, [])
        # scrmbot tags through the owner's relationship (else the first): WeCom has them there
        tagged = next((r for r in mine if r.staff_userid == customer.owner_userid),
                      mine[0] if mine else None)
        for relation in mine:
            added = relation.added_at or customer.first_contact_at
            state.follows[(relation.staff_userid, ext)] = Follow(
                relation.staff_userid, ext, _STATUSES.get(relation.status, FollowStatus.ACTIVE),
                int(added.timestamp()) if added else state.unix(), state=relation.state,
                remark_mobiles=[customer.mobile] if customer.mobile else [],
                tag_ids=[t for t in tag_ids.get(customer.id, []) if t in state.tags]
                if relation is tagged else [])
        restored += 1
    return restored
