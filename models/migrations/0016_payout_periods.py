from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0015_stage_windows')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PayoutPeriod',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('period', fields.CharField(max_length=7)),
                ('ticket_type', fields.CharField(max_length=32)),
                ('region', fields.CharField(default='', max_length=32)),
                ('rule_set', fields.CharField(max_length=32)),
                ('rule_version', fields.IntField()),
                ('channel', fields.CharField(max_length=32)),
                ('bucket', fields.CharField(max_length=10)),
                ('n', fields.IntField(default=0)),
                ('payout_fen', fields.BigIntField(default=0)),
                ('installer_fen', fields.BigIntField(default=0)),
                ('total_fen', fields.BigIntField(default=0)),
            ],
            options={'table': 'payout_period', 'app': 'models', 'unique_together': (('period', 'ticket_type', 'region', 'rule_set', 'rule_version', 'channel', 'bucket'),), 'pk_attr': 'id', 'table_description': "The revenue board's cube: payouts of one settlement period, ticket type, region"},
            bases=['Model'],
        ),
    ]
