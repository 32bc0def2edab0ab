from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.tickets import TicketStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_scan_event_key')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Freeze',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('kind', fields.CharField(default='store', max_length=8)),
                ('frozen', fields.BooleanField(default=False)),
                ('reason', fields.TextField(default='', unique=False)),
                ('since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lifted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lifted_by', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'freeze', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A store or team frozen by the circuit breaker until an approver lifts it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OverdueDay',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('store', fields.CharField(max_length=64)),
                ('day', fields.DateField()),
                ('overdue', fields.IntField(default=0)),
            ],
            options={'table': 'overdue_day', 'app': 'models', 'unique_together': (('store', 'day'),), 'pk_attr': 'id', 'table_description': "A day on which a store had overdue tickets (the breaker's memory)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Ticket',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('number', fields.CharField(unique=True, max_length=20)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.CASCADE)),
                ('type', fields.CharField(max_length=32)),
                ('summary', fields.TextField(default='', unique=False)),
                ('priority', fields.CharField(default='normal', max_length=8)),
                ('product', fields.CharField(null=True, max_length=32)),
                ('store', fields.CharField(null=True, max_length=64)),
                ('service_store', fields.CharField(null=True, db_index=True, max_length=64)),
                ('region', fields.CharField(null=True, db_index=True, max_length=32)),
                ('team', fields.CharField(db_index=True, max_length=64)),
                ('assignee', fields.CharField(null=True, db_index=True, max_length=64)),
                ('assigned_ms', fields.BigIntField(default=0)),
                ('status', fields.CharEnumField(default=TicketStatus.OPEN, description='OPEN: open\nWAITING: waiting\nCLOSED: closed', enum_type=TicketStatus, max_length=8)),
                ('source', fields.CharField(default='staff', max_length=16)),
                ('routing_reason', fields.TextField(default='', unique=False)),
                ('created_by', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sla_policy', fields.CharField(default='default', max_length=64)),
                ('response_due', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolution_due', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('responded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paused_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('response_left_s', fields.IntField(null=True)),
                ('resolution_left_s', fields.IntField(null=True)),
                ('escalation', fields.CharField(null=True, max_length=16)),
                ('stages', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('stage_index', fields.IntField(default=0)),
                ('stage_started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('amount_fen', fields.BigIntField(null=True)),
            ],
            options={'table': 'ticket', 'app': 'models', 'indexes': [Index(fields=['status', 'resolution_due']), Index(fields=['status', 'assignee'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketCounter',
            fields=[
                ('day', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=8)),
                ('value', fields.IntField(default=0)),
            ],
            options={'table': 'ticket_counter', 'app': 'models', 'pk_attr': 'day', 'table_description': 'Per-day sequence behind T-YYYYMMDD-NNNN.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(default='system', max_length=64)),
                ('kind', fields.CharField(max_length=24)),
                ('detail', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'ticket_event', 'app': 'models', 'pk_attr': 'id', 'table_description': "The ticket's history: every move, note, reminder and escalation. Never updated."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TicketTimer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='timers', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=64)),
                ('fire_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('fired_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled', fields.BooleanField(default=False)),
            ],
            options={'table': 'ticket_timer', 'app': 'models', 'indexes': [Index(fields=['fired_at', 'cancelled', 'fire_at'])], 'pk_attr': 'id', 'table_description': 'Something the sweep must do at a moment, once: claimed by a conditional UPDATE.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Customer',
            name='home_store',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Staff',
            name='on_duty',
            field=fields.BooleanField(default=True),
        ),
    ]
