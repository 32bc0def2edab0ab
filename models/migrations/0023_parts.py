from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0022_ticket_fields')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Part',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sku', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=128)),
                ('unit', fields.CharField(default='个', max_length=16)),
                ('cost_fen', fields.BigIntField()),
                ('reorder_level', fields.IntField(default=0)),
                ('category', fields.CharField(default='', max_length=32)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'part', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A catalogue entry: one SKU, its cost and the level below which it is reordered.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reservation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='reservations', on_delete=OnDelete.CASCADE)),
                ('part', fields.ForeignKeyField('models.Part', source_field='part_id', db_constraint=True, to_field='id', related_name='reservations', on_delete=OnDelete.CASCADE)),
                ('warehouse', fields.CharField(max_length=64)),
                ('qty', fields.IntField()),
                ('state', fields.CharField(default='held', max_length=10)),
                ('unit_cost_fen', fields.BigIntField(default=0)),
                ('created_by', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reservation', 'app': 'models', 'indexes': [Index(fields=['ticket_id', 'state'])], 'pk_attr': 'id', 'table_description': 'Units of a part set aside for a ticket: held, then consumed at close (installed, paid'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Stock',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('part', fields.ForeignKeyField('models.Part', source_field='part_id', db_constraint=True, to_field='id', related_name='stock', on_delete=OnDelete.CASCADE)),
                ('warehouse', fields.CharField(max_length=64)),
                ('on_hand', fields.IntField(default=0)),
                ('reserved', fields.IntField(default=0)),
                ('alert_armed', fields.BooleanField(default=True)),
                ('alerts', fields.IntField(default=0)),
                ('counted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'stock', 'app': 'models', 'unique_together': (('part', 'warehouse'),), 'pk_attr': 'id', 'table_description': 'A part in one warehouse. `alert_armed` is False after the manager was told the stock'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StockMovement',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('part', fields.ForeignKeyField('models.Part', source_field='part_id', db_constraint=True, to_field='id', related_name='movements', on_delete=OnDelete.CASCADE)),
                ('warehouse', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=8)),
                ('on_hand_delta', fields.IntField(default=0)),
                ('reserved_delta', fields.IntField(default=0)),
                ('ticket_number', fields.CharField(null=True, max_length=20)),
                ('actor', fields.CharField(default='', max_length=64)),
                ('note', fields.CharField(default='', max_length=255)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'stock_movement', 'app': 'models', 'indexes': [Index(fields=['part_id', 'warehouse', 'id'])], 'pk_attr': 'id', 'table_description': 'The stock log: every change of on hand or reserved, with why. Never updated.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Ticket',
            name='cancelled_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
