from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_care')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='LedgerEntry',
            name='payout',
            field=fields.ForeignKeyField('models.Payout', source_field='payout_id', db_index=True, db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE),
        ),
        ops.AlterField(
            model_name='Payout',
            name='ticket',
            field=fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_index=True, db_constraint=True, to_field='id', related_name='payouts', on_delete=OnDelete.CASCADE),
        ),
    ]
