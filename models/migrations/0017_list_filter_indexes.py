from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_payout_periods')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Customer',
            index=Index(fields=['source_state']),
        ),
        ops.AddIndex(
            model_name='Customer',
            index=Index(fields=['owner_userid', 'dormant_since']),
        ),
        ops.AddIndex(
            model_name='CustomerTag',
            index=Index(fields=['name', 'group_name', 'customer_id']),
        ),
    ]
