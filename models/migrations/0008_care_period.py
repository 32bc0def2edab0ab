from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_effectively_once')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='CareRecord',
            name='period',
            field=fields.CharField(max_length=64),
        ),
    ]
