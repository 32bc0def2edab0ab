from tortoise import migrations
from tortoise.migrations import operations as ops
from models.settlement import PayoutStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_outbox')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Payout',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=64)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='payouts', on_delete=OnDelete.CASCADE)),
                ('installer', fields.CharField(db_index=True, max_length=64)),
                ('store', fields.CharField(null=True, max_length=64)),
                ('region', fields.CharField(null=True, db_index=True, max_length=32)),
                ('rule_set', fields.CharField(max_length=32)),
                ('rule_version', fields.IntField()),
                ('channel', fields.CharField(max_length=32)),
                ('base_fen', fields.BigIntField()),
                ('total_fen', fields.BigIntField()),
                ('payout_fen', fields.BigIntField()),
                ('installer_fen', fields.BigIntField()),
                ('status', fields.CharEnumField(description='AWAITING_APPROVAL: awaiting\nAPPROVED: approved\nREJECTED: rejected\nPAID: paid\nREVERSED: reversed', enum_type=PayoutStatus, max_length=10)),
                ('approval_reasons', fields.TextField(default='', unique=False)),
                ('period', fields.CharField(db_index=True, max_length=7)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decided_by', fields.CharField(null=True, max_length=64)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'payout', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One settlement of one ticket. `key` (ticket + generation) makes settling twice a no-op.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=96)),
                ('payout', fields.ForeignKeyField('models.Payout', source_field='payout_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=8)),
                ('item', fields.CharField(max_length=64)),
                ('payee', fields.CharField(max_length=16)),
                ('amount_fen', fields.BigIntField()),
                ('period', fields.CharField(db_index=True, max_length=7)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ledger_entry', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An immutable money movement: a settlement line, or the reversal of one.'},
            bases=['Model'],
        ),
    ]
