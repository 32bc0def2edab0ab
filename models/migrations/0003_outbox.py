from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.outbox import OutboxStatus
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_oa_last_seen')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GroupMessageReceipt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('external_userid', fields.CharField(max_length=64)),
                ('month', fields.CharField(max_length=6)),
                ('outbox_id', fields.BigIntField()),
            ],
            options={'table': 'group_message_receipt', 'app': 'models', 'unique_together': (('external_userid', 'month', 'outbox_id'),), 'indexes': [Index(fields=['external_userid', 'month'])], 'pk_attr': 'id', 'table_description': 'A customer included in a group-message task this calendar month.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=191)),
                ('kind', fields.CharField(db_index=True, max_length=32)),
                ('channel', fields.CharField(max_length=12)),
                ('recipient', fields.CharField(db_index=True, max_length=64)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('customer_facing', fields.BooleanField(default=False)),
                ('status', fields.CharEnumField(default=OutboxStatus.PENDING, description='PENDING: pending\nSENDING: sending\nSENT: sent\nFAILED: failed', enum_type=OutboxStatus, max_length=8)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_ms', fields.BigIntField(default=0)),
                ('locked_until_ms', fields.BigIntField(default=0)),
                ('locked_by', fields.CharField(null=True, max_length=64)),
                ('errcode', fields.IntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_ms'])], 'pk_attr': 'id', 'table_description': 'One notice. `key` (kind:subject:period) makes enqueueing it twice a no-op.'},
            bases=['Model'],
        ),
    ]
