from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(db_index=True, max_length=64)),
                ('action', fields.CharField(max_length=64)),
                ('arguments', fields.TextField(default='', unique=False)),
                ('outcome', fields.CharField(max_length=16)),
                ('detail', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'audit_log', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Who did what, when, with which arguments, and the outcome. Rows are never updated.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='CustomerTag',
            name='synced',
            field=fields.BooleanField(default=True),
        ),
    ]
