from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0021_handover')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BookingSlot',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('store', fields.CharField(max_length=64)),
                ('start', fields.CharField(max_length=16)),
                ('taken', fields.IntField(default=0)),
            ],
            options={'table': 'booking_slot', 'app': 'models', 'unique_together': (('store', 'start'),), 'pk_attr': 'id', 'table_description': "How many bookings a store's slot holds: taken by a conditional UPDATE below capacity."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Ticket',
            name='field_values',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Ticket',
            name='form_token',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
