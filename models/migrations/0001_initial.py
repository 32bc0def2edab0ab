from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.contacts import CustomerStatus, RelationStatus
from models.inbox import InboxStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='CorpTag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tag_id', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=64)),
                ('group_id', fields.CharField(max_length=64)),
                ('group_name', fields.CharField(max_length=64)),
                ('deleted', fields.BooleanField(default=False)),
            ],
            options={'table': 'corp_tag', 'app': 'models', 'unique_together': (('group_name', 'name'),), 'pk_attr': 'id', 'table_description': 'A corp tag as WeCom knows it (id, group), mirrored so commands can use names.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Customer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('external_userid', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(default='', max_length=128)),
                ('type', fields.SmallIntField(default=1)),
                ('gender', fields.SmallIntField(default=0)),
                ('avatar', fields.CharField(default='', max_length=512)),
                ('unionid', fields.CharField(null=True, max_length=64)),
                ('mobile', fields.CharField(null=True, db_index=True, max_length=32)),
                ('corp_name', fields.CharField(default='', max_length=128)),
                ('owner_userid', fields.CharField(null=True, db_index=True, max_length=64)),
                ('source', fields.CharField(default='unknown', max_length=16)),
                ('source_state', fields.CharField(null=True, max_length=32)),
                ('region', fields.CharField(null=True, db_index=True, max_length=32)),
                ('store', fields.CharField(null=True, max_length=64)),
                ('status', fields.CharEnumField(default=CustomerStatus.ACTIVE, description='ACTIVE: active\nENDED: ended', enum_type=CustomerStatus, max_length=8)),
                ('transfer_fail_reason', fields.CharField(null=True, max_length=64)),
                ('first_contact_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_purchase_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lifetime_spend_fen', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'customer', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An external contact. Never deleted: an ended relationship keeps its history.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CustomerTag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='tags', on_delete=OnDelete.CASCADE)),
                ('group_name', fields.CharField(default='', max_length=64)),
                ('name', fields.CharField(max_length=64)),
                ('tag_id', fields.CharField(null=True, max_length=64)),
                ('origin', fields.CharField(default='wecom', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'customer_tag', 'app': 'models', 'unique_together': (('customer', 'group_name', 'name'),), 'pk_attr': 'id', 'table_description': 'A tag on a customer in our database (mirrored to WeCom with mark_tag).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FollowRelation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='relations', on_delete=OnDelete.CASCADE)),
                ('staff_userid', fields.CharField(max_length=64)),
                ('state', fields.CharField(null=True, max_length=32)),
                ('status', fields.CharEnumField(default=RelationStatus.ACTIVE, description='HALF: half\nACTIVE: active\nDELETED_BY_STAFF: deleted_by_staff\nDELETED_BY_CUSTOMER: deleted_by_customer', enum_type=RelationStatus, max_length=20)),
                ('added_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('end_detail', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'follow_relation', 'app': 'models', 'unique_together': (('customer', 'staff_userid'),), 'pk_attr': 'id', 'table_description': 'A member–customer friendship as WeCom reports it (follow_user).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InboxEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('source', fields.CharField(max_length=16)),
                ('dedup_key', fields.CharField(unique=True, max_length=128)),
                ('kind', fields.CharField(max_length=96)),
                ('subject', fields.CharField(max_length=160)),
                ('payload', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=InboxStatus.PENDING, description='PENDING: pending\nPROCESSING: processing\nDONE: done\nDEAD: dead', enum_type=InboxStatus, max_length=12)),
                ('attempts', fields.IntField(default=0)),
                ('received_ms', fields.BigIntField()),
                ('next_attempt_ms', fields.BigIntField()),
                ('locked_until_ms', fields.BigIntField(default=0)),
                ('locked_by', fields.CharField(null=True, max_length=64)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('processed_ms', fields.BigIntField(null=True)),
            ],
            options={'table': 'inbox', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_ms'])], 'pk_attr': 'id', 'table_description': 'One accepted callback.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Staff',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('userid', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(default='', max_length=64)),
                ('department_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('main_department', fields.IntField(null=True)),
                ('position', fields.CharField(default='', max_length=128)),
                ('mobile', fields.CharField(default='', max_length=32)),
                ('region', fields.CharField(null=True, max_length=32)),
                ('role', fields.CharField(default='viewer', max_length=16)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'staff', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A WeCom member who talks to the app, fetched with user/get on first contact.'},
            bases=['Model'],
        ),
    ]
