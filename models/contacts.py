"""Staff (WeCom members), customers (external contacts), their relationships and tags."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Staff(Model):
    """A WeCom member who talks to the app, fetched with user/get on first contact."""

    id = fields.IntField(primary_key=True)
    userid = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64, default="")
    department_ids: fields.Field[list[int]] = fields.JSONField(default=list)
    main_department = fields.IntField(null=True)
    position = fields.CharField(max_length=128, default="")
    mobile = fields.CharField(max_length=32, default="")
    region = fields.CharField(max_length=32, null=True)
    role = fields.CharField(max_length=16, default="viewer")
    active = fields.BooleanField(default=True)
    on_duty = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "staff"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Customer(Model):
    """An external contact. Never deleted: an ended relationship keeps its history."""

    id = fields.IntField(primary_key=True)
    # An external contact's id; None for an Official Account follower known only by openid.
    external_userid = fields.CharField(max_length=64, unique=True, null=True)
    openid = fields.CharField(max_length=64, unique=True, null=True)
    name = fields.CharField(max_length=128, default="")
    type = fields.SmallIntField(default=1)
    gender = fields.SmallIntField(default=0)
    avatar = fields.CharField(max_length=512, default="")
    unionid = fields.CharField(max_length=64, null=True)
    mobile = fields.CharField(max_length=32, null=True, db_index=True)
    corp_name = fields.CharField(max_length=128, default="")
    owner_userid = fields.CharField(max_length=64, null=True, db_index=True)
    source = fields.CharField(max_length=16, default="unknown")  # channel | unknown | oa
    source_state = fields.CharField(max_length=32, null=True)
    region = fields.CharField(max_length=32, null=True, db_index=True)
    store = fields.CharField(max_length=64, null=True)
    home_store = fields.CharField(max_length=64, null=True)  # the store whose area they live in
    # Their last message to the Official Account: customer-service messages are allowed for
    # 48 hours after it.
    oa_last_seen_at = fields.DatetimeField(null=True)
    birthday = fields.DateField(null=True)
    # Other dates care schedules may follow, e.g. {"baby_birthday": "2026-10-20"}.
    dates: fields.Field[dict[str, str]] = fields.JSONField(default=dict, db_default="{}")
    dormant_since = fields.DatetimeField(null=True)
    status = fields.CharEnumField(CustomerStatus, max_length=8, default=CustomerStatus.ACTIVE)
    transfer_fail_reason = fields.CharField(max_length=64, null=True)
    first_contact_at = fields.DatetimeField(null=True)
    last_purchase_at = fields.DatetimeField(null=True)
    lifetime_spend_fen = fields.BigIntField(default=0)
    # What created a customer who is not (yet) a WeCom contact: "order:<source>:<shop>:<number>"
    # for a buyer first seen in an order. Unique, so a batch of new buyers finds its rows.
    origin_key = fields.CharField(max_length=160, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    relations: fields.ReverseRelation[FollowRelation]
    tags: fields.ReverseRelation[CustomerTag]

    class Meta:
        table = "customer"
        indexes = (("first_contact_at", "region"),  # new customers per region
                   ("source_state",),  # the lists' channel filter
                   ("owner_userid", "dormant_since"))  # an owner's dormant customers


class RelationStatus(StrEnum):
    HALF = "half"
    ACTIVE = "active"
    DELETED_BY_STAFF = "deleted_by_staff"
    DELETED_BY_CUSTOMER = "deleted_by_customer"


class FollowRelation(Model):
    """A member–customer friendship as WeCom reports it (follow_user)."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="relations")
    staff_userid = fields.CharField(max_length=64)
    state = fields.CharField(max_length=32, null=True)
    status = fields.CharEnumField(RelationStatus, max_length=20, default=RelationStatus.ACTIVE)
    added_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    end_detail = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "follow_relation"
        unique_together = (("customer", "staff_userid"),)
        indexes = (("staff_userid", "status"),)  # the customers a member follows: scope


class CorpTag(Model):
    """A corp tag as WeCom knows it (id, group), mirrored so commands can use names."""

    id = fields.IntField(primary_key=True)
    tag_id = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    group_id = fields.CharField(max_length=64)
    group_name = fields.CharField(max_length=64)
    deleted = fields.BooleanField(default=False)

    class Meta:
        table = "corp_tag"
        unique_together = (("group_name", "name"),)


class CustomerTag(Model):
    """A tag on a customer in our database (mirrored to WeCom with mark_tag)."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="tags")
    group_name = fields.CharField(max_length=64, default="")
    name = fields.CharField(max_length=64)
    tag_id = fields.CharField(max_length=64, null=True)
    # channel | command | wecom | computed
    origin = fields.CharField(max_length=16, default="wecom")
    # False while WeCom refused it (84061 on a half-added relationship): retried on the add.
    synced = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customer_tag"
        unique_together = (("customer", "group_name", "name"),)
        indexes = (("name", "group_name", "customer_id"),)  # the lists' tag filter
