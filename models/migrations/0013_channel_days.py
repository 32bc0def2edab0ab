from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_board_rollups')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChannelDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('day', fields.DateField()),
                ('channel_id', fields.IntField(default=0)),
                ('region', fields.CharField(default='', max_length=32)),
                ('visit_period', fields.CharField(default='', max_length=16)),
                ('weekday', fields.SmallIntField(default=0)),
                ('scans', fields.IntField(default=0)),
                ('new_customers', fields.IntField(default=0)),
                ('buyers', fields.IntField(default=0)),
                ('openers', fields.IntField(default=0)),
                ('lost', fields.IntField(default=0)),
            ],
            options={'table': 'channel_day', 'app': 'models', 'unique_together': (('day', 'channel_id', 'region', 'visit_period'),), 'pk_attr': 'id', 'table_description': 'Scans of one local day through one channel (0 = none) in one region ("" = none) and'},
            bases=['Model'],
        ),
    ]
