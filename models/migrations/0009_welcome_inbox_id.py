from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_care_period')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='InboxEntry',
            index=Index(fields=['received_ms']),
        ),
        ops.AddField(
            model_name='WelcomeSend',
            name='inbox_id',
            field=fields.BigIntField(null=True, db_index=True),
        ),
    ]
