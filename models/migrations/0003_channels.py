from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_audit_and_tag_sync')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Channel',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('state', fields.CharField(unique=True, max_length=30)),
                ('config_id', fields.CharField(null=True, max_length=64)),
                ('qr_code', fields.CharField(default='', max_length=512)),
                ('tags', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('staff', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('welcome', fields.TextField(default='', unique=False)),
                ('store', fields.CharField(null=True, max_length=64)),
                ('region', fields.CharField(null=True, db_index=True, max_length=32)),
                ('is_temp', fields.BooleanField(default=False)),
                ('kind', fields.CharField(default='wecom', max_length=8)),
                ('active', fields.BooleanField(default=True)),
                ('created_by', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'channel', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A channel QR code. Turned off, never deleted: its customers keep their source.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChannelScan',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.ForeignKeyField('models.Channel', source_field='channel_id', null=True, db_constraint=True, to_field='id', related_name='scans', on_delete=OnDelete.CASCADE)),
                ('state', fields.CharField(null=True, max_length=64)),
                ('customer_id', fields.IntField(db_index=True)),
                ('staff_userid', fields.CharField(default='', max_length=64)),
                ('new_customer', fields.BooleanField(default=True)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('welcome', fields.CharField(default='none', max_length=16)),
            ],
            options={'table': 'channel_scan', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One add (or OA follow) through a channel, or with no or an unknown state.'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Customer',
            name='external_userid',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
        ops.AddField(
            model_name='Customer',
            name='openid',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
