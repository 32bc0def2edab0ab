from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0018_quick_replies')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Order',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('source', fields.CharField(max_length=16)),
                ('shop', fields.CharField(max_length=64)),
                ('number', fields.CharField(max_length=64)),
                ('status', fields.CharField(max_length=12)),
                ('customer_id', fields.IntField(null=True, db_index=True)),
                ('region', fields.CharField(null=True, max_length=32)),
                ('buyer_phone', fields.CharField(null=True, max_length=16)),
                ('buyer_platform_id', fields.CharField(default='', max_length=64)),
                ('buyer_unionid', fields.CharField(default='', max_length=64)),
                ('buyer_name', fields.CharField(default='', max_length=64)),
                ('province', fields.CharField(default='', max_length=32)),
                ('city', fields.CharField(default='', max_length=32)),
                ('address', fields.CharField(default='', max_length=255)),
                ('items', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('category', fields.CharField(default='', max_length=32)),
                ('goods_fen', fields.BigIntField(default=0)),
                ('freight_fen', fields.BigIntField(default=0)),
                ('discount_fen', fields.BigIntField(default=0)),
                ('paid_fen', fields.BigIntField(default=0)),
                ('refunded_fen', fields.BigIntField(default=0)),
                ('ordered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('shipped_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('refunded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('salesperson', fields.CharField(default='', max_length=64)),
                ('store', fields.CharField(default='', max_length=64)),
                ('digest', fields.CharField(max_length=32)),
                ('via', fields.CharField(default='import', max_length=16)),
                ('first_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'shop_order', 'app': 'models', 'unique_together': (('source', 'shop', 'number'),), 'indexes': [Index(fields=['number']), Index(fields=['delivered_at']), Index(fields=['region', 'paid_at'])], 'pk_attr': 'id', 'table_description': 'One platform order, upserted by (source, shop, number). Amounts are fen. The'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrderImport',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('source', fields.CharField(max_length=16)),
                ('shop', fields.CharField(max_length=64)),
                ('file_name', fields.CharField(max_length=255)),
                ('started_by', fields.CharField(default='', max_length=64)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('rows', fields.IntField(default=0)),
                ('imported', fields.IntField(default=0)),
                ('updated', fields.IntField(default=0)),
                ('unchanged', fields.IntField(default=0)),
                ('stale', fields.IntField(default=0)),
                ('refused', fields.IntField(default=0)),
                ('error_file', fields.CharField(default='', max_length=255)),
                ('failed', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'order_import', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One file import: who ran it, what it did, where its refusals were written.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ShopCursor',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('shop', fields.CharField(unique=True, max_length=64)),
                ('cursor', fields.CharField(default='', max_length=255)),
                ('pulled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pulled', fields.IntField(default=0)),
                ('last_error', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'shop_cursor', 'app': 'models', 'pk_attr': 'id', 'table_description': "How far a pulled shop has been read: the platform's cursor, kept after each page."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Customer',
            name='origin_key',
            field=fields.CharField(null=True, unique=True, max_length=160),
        ),
        ops.AddField(
            model_name='Purchase',
            name='order_id',
            field=fields.BigIntField(null=True, db_index=True),
        ),
    ]
