from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_web_sessions')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Customer',
            name='first_contact_at',
            field=fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Payout',
            index=Index(fields=['period', 'status']),
        ),
        ops.AddIndex(
            model_name='Payout',
            index=Index(fields=['status', 'created_at']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['created_at']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['closed_at']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['responded_at']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['customer_id']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['type', 'status']),
        ),
        ops.AddIndex(
            model_name='TicketEvent',
            index=Index(fields=['ticket_id', 'id']),
        ),
        ops.AddIndex(
            model_name='TicketEvent',
            index=Index(fields=['kind', 'at']),
        ),
    ]
