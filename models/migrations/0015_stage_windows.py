from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_board_live_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StageWindow',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket_type', fields.CharField(max_length=32)),
                ('region', fields.CharField(default='', max_length=32)),
                ('days', fields.SmallIntField()),
                ('station_name', fields.CharField(max_length=64)),
                ('team', fields.CharField(default='', max_length=64)),
                ('visits', fields.IntField(default=0)),
                ('late', fields.IntField(default=0)),
                ('median_s', fields.FloatField(null=True)),
                ('as_of', fields.DatetimeField()),
            ],
            options={'table': 'stage_window', 'app': 'models', 'unique_together': (('ticket_type', 'region', 'days', 'station_name', 'team'),), 'pk_attr': 'id', 'table_description': "The stage map's visit figures for one ticket type, region (\"\" = every region) and"},
            bases=['Model'],
        ),
    ]
