from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0017_list_filter_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='QuickReply',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group_name', fields.CharField(max_length=32)),
                ('title', fields.CharField(max_length=64)),
                ('text', fields.TextField(unique=False)),
                ('active', fields.BooleanField(default=True)),
                ('seeded', fields.BooleanField(default=False)),
                ('sent_count', fields.IntField(default=0)),
                ('updated_by', fields.CharField(default='', max_length=64)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quick_reply', 'app': 'models', 'unique_together': (('group_name', 'title'),), 'pk_attr': 'id', 'table_description': 'A reply staff send into a chat, in a group. Seeded once from the rules file, kept by'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='FollowRelation',
            index=Index(fields=['staff_userid', 'status']),
        ),
    ]
