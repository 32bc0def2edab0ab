from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_channels')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ChannelScan',
            name='event_key',
            field=fields.CharField(unique=True, max_length=40),
        ),
    ]
