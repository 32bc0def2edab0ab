from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0020_ticket_orders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Departure',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('userid', fields.CharField(unique=True, max_length=64)),
                ('left_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('source', fields.CharField(max_length=16)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('handover_id', fields.IntField(null=True)),
            ],
            options={'table': 'departure', 'app': 'models', 'pk_attr': 'id', 'table_description': "A member who left: the default rule's clock starts at `left_at`."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Handover',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=12)),
                ('handover_userid', fields.CharField(db_index=True, max_length=64)),
                ('takeover_userid', fields.CharField(max_length=64)),
                ('requested_by', fields.CharField(max_length=64)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('selection', fields.CharField(default='', max_length=200)),
                ('message', fields.CharField(default='', max_length=200)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'handover', 'app': 'models', 'pk_attr': 'id', 'table_description': "One request to hand a member's customers to another: by /handover, or by the rules"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HandoverItem',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('handover_id', fields.IntField(db_index=True)),
                ('customer_id', fields.IntField()),
                ('external_userid', fields.CharField(db_index=True, max_length=64)),
                ('status', fields.CharField(default='queued', max_length=8)),
                ('errcode', fields.IntField(default=0)),
                ('submitted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('takeover_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'handover_item', 'app': 'models', 'unique_together': (('handover_id', 'customer_id'),), 'indexes': [Index(fields=['status', 'handover_id'])], 'pk_attr': 'id', 'table_description': 'One customer of a handover and how far WeCom has taken them.'},
            bases=['Model'],
        ),
        ops.RemoveIndex(
            model_name='Order',
            name=None,
            fields=['region', 'paid_at'],
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['paid_at']),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['source', 'buyer_platform_id']),
        ),
    ]
