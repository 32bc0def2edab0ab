from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0019_orders')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='ShopCursor',
            name='shop',
            field=fields.CharField(unique=True, max_length=96),
        ),
        ops.AddField(
            model_name='Ticket',
            name='order_id',
            field=fields.BigIntField(null=True),
        ),
    ]
