from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_welcome_inbox_id')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WebSession',
            fields=[
                ('sid', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=43)),
                ('userid', fields.CharField(db_index=True, max_length=64)),
                ('via', fields.CharField(max_length=8)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('user_agent', fields.CharField(default='', max_length=256)),
            ],
            options={'table': 'web_session', 'app': 'models', 'pk_attr': 'sid', 'table_description': 'One login to the console. The cookie names it (sealed), this row says whether it'},
            bases=['Model'],
        ),
    ]
