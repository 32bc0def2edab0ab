from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_board_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RollupCursor',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('position', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'rollup_cursor', 'app': 'models', 'pk_attr': 'name', 'table_description': 'How far a rollup job has come (e.g. the last ticket_event id it has read).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StageVisit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket_id', fields.IntField()),
                ('event_id', fields.BigIntField(unique=True)),
                ('ticket_type', fields.CharField(max_length=32)),
                ('region', fields.CharField(null=True, max_length=32)),
                ('team', fields.CharField(default='', max_length=64)),
                ('station', fields.IntField()),
                ('station_name', fields.CharField(max_length=64)),
                ('entered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('left_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seconds', fields.IntField()),
                ('limit_s', fields.IntField(null=True)),
                ('over', fields.BooleanField(default=False)),
                ('outcome', fields.CharField(default='done', max_length=8)),
            ],
            options={'table': 'stage_visit', 'app': 'models', 'indexes': [Index(fields=['ticket_type', 'left_at'])], 'pk_attr': 'id', 'table_description': 'One completed stay of a ticket at a station of its pipeline (a stage done or'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('day', fields.DateField()),
                ('region', fields.CharField(default='', max_length=32)),
                ('ticket_type', fields.CharField(max_length=32)),
                ('visit_period', fields.CharField(default='', max_length=16)),
                ('opened', fields.IntField(default=0)),
                ('responded', fields.IntField(default=0)),
                ('responded_on_time', fields.IntField(default=0)),
                ('closed', fields.IntField(default=0)),
                ('closed_on_time', fields.IntField(default=0)),
                ('breached', fields.IntField(default=0)),
                ('response_s', fields.BigIntField(default=0)),
                ('response_n', fields.IntField(default=0)),
                ('resolution_s', fields.BigIntField(default=0)),
                ('resolution_n', fields.IntField(default=0)),
            ],
            options={'table': 'ticket_day', 'app': 'models', 'unique_together': (('day', 'region', 'ticket_type', 'visit_period'),), 'pk_attr': 'id', 'table_description': 'Ticket figures of one local day, region, type and visit period (时段 of opening):'},
            bases=['Model'],
        ),
    ]
