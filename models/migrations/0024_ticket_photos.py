from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0023_parts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TicketPhoto',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ticket', fields.ForeignKeyField('models.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='photos', on_delete=OnDelete.CASCADE)),
                ('stage', fields.CharField(default='', max_length=64)),
                ('stage_index', fields.IntField(null=True)),
                ('sender', fields.CharField(max_length=64)),
                ('media_id', fields.CharField(max_length=255)),
                ('inbox_id', fields.BigIntField()),
                ('storage_key', fields.CharField(default='', max_length=255)),
                ('size', fields.IntField(default=0)),
                ('sha256', fields.CharField(default='', max_length=64)),
                ('content_type', fields.CharField(default='', max_length=64)),
                ('taken_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('deleted_by', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'ticket_photo', 'app': 'models', 'unique_together': (('inbox_id', 'media_id'),), 'indexes': [Index(fields=['ticket_id', 'stage']), Index(fields=['sender', 'ticket_id'])], 'pk_attr': 'id', 'table_description': 'A photo a member sent to the app as proof of a stage (拍照验收), or one waiting for'},
            bases=['Model'],
        ),
    ]
