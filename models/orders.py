"""Orders from shops and platforms, the imports that brought them, and the pull cursors."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Order(Model):
    """One platform order, upserted by (source, shop, number). Amounts are fen. The
    customer it joined is set on arrival (by phone, then unionid, else a new prospect).
    Items are kept as the platform sent them (a list of sku, name, category, quantity,
    unit_price_fen)."""

    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=16)
    shop = fields.CharField(max_length=64)
    number = fields.CharField(max_length=64)
    status = fields.CharField(max_length=12)
    customer_id = fields.IntField(null=True, db_index=True)
    region = fields.CharField(max_length=32, null=True)
    buyer_phone = fields.CharField(max_length=16, null=True)
    buyer_platform_id = fields.CharField(max_length=64, default="")
    buyer_unionid = fields.CharField(max_length=64, default="")
    buyer_name = fields.CharField(max_length=64, default="")
    province = fields.CharField(max_length=32, default="")
    city = fields.CharField(max_length=32, default="")
    address = fields.CharField(max_length=255, default="")
    items: fields.Field[list[dict[str, object]]] = fields.JSONField(default=list)
    category = fields.CharField(max_length=32, default="")  # the first item's, for routing
    goods_fen = fields.BigIntField(default=0)
    freight_fen = fields.BigIntField(default=0)
    discount_fen = fields.BigIntField(default=0)
    paid_fen = fields.BigIntField(default=0)
    refunded_fen = fields.BigIntField(default=0)
    ordered_at = fields.DatetimeField(null=True)
    paid_at = fields.DatetimeField(null=True)
    shipped_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    refunded_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    salesperson = fields.CharField(max_length=64, default="")
    store = fields.CharField(max_length=64, default="")
    digest = fields.CharField(max_length=32)
    via = fields.CharField(max_length=16, default="import")  # import | webhook | pull
    first_seen_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "shop_order"
        unique_together = (("source", "shop", "number"),)
        indexes = (("number",), ("delivered_at",), ("paid_at",),
                   ("source", "buyer_platform_id"))


class OrderImport(Model):
    """One file import: who ran it, what it did, where its refusals were written."""

    id = fields.IntField(primary_key=True)
    source = fields.CharField(max_length=16)
    shop = fields.CharField(max_length=64)
    file_name = fields.CharField(max_length=255)
    started_by = fields.CharField(max_length=64, default="")
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    rows = fields.IntField(default=0)
    imported = fields.IntField(default=0)
    updated = fields.IntField(default=0)
    unchanged = fields.IntField(default=0)
    stale = fields.IntField(default=0)
    refused = fields.IntField(default=0)
    error_file = fields.CharField(max_length=255, default="")
    failed = fields.TextField(default="")  # why an import stopped, if it did

    class Meta:
        table = "order_import"


class ShopCursor(Model):
    """How far a pulled shop has been read: the platform's cursor, kept after each page."""

    id = fields.IntField(primary_key=True)
    shop = fields.CharField(max_length=96, unique=True)  # "<source>:<shop>"
    cursor = fields.CharField(max_length=255, default="")
    pulled_at = fields.DatetimeField(null=True)
    pulled = fields.IntField(default=0)
    last_error = fields.TextField(default="")

    class Meta:
        table = "shop_cursor"
