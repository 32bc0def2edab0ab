from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_channel_days')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Customer',
            name='first_contact_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Customer',
            index=Index(fields=['first_contact_at', 'region']),
        ),
        ops.AddIndex(
            model_name='Payout',
            index=Index(fields=['status', 'paid_at']),
        ),
        ops.RemoveIndex(
            model_name='StageVisit',
            name=None,
            fields=['ticket_type', 'left_at'],
        ),
        ops.AddIndex(
            model_name='StageVisit',
            index=Index(fields=['ticket_type', 'left_at', 'station_name', 'region', 'team', 'seconds']),
        ),
        ops.AddIndex(
            model_name='Ticket',
            index=Index(fields=['status', 'region', 'escalation', 'resolution_due', 'response_due', 'responded_at']),
        ),
    ]
