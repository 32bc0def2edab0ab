from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_settlement')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CareRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('schedule', fields.CharField(max_length=64)),
                ('customer_id', fields.IntField()),
                ('period', fields.CharField(max_length=16)),
                ('outbox_key', fields.CharField(max_length=191)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'care_record', 'app': 'models', 'unique_together': (('schedule', 'customer_id', 'period'),), 'pk_attr': 'id', 'table_description': 'A customer included in a care notice for a schedule and period (e.g. a year).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JobRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.CharField(max_length=64)),
                ('slot', fields.CharField(max_length=32)),
                ('instance', fields.CharField(max_length=64)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'job_run', 'app': 'models', 'unique_together': (('job', 'slot'),), 'pk_attr': 'id', 'table_description': 'A claimed run of a scheduled job: (job, slot) is unique, so one instance runs it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Purchase',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer_id', fields.IntField(db_index=True)),
                ('amount_fen', fields.BigIntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('source', fields.CharField(default='staff', max_length=32)),
                ('recorded_by', fields.CharField(default='', max_length=64)),
            ],
            options={'table': 'purchase', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A purchase on record (feeds last purchase, lifetime spend, dormancy and rebates).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Customer',
            name='birthday',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Customer',
            name='dates',
            field=fields.JSONField(default=dict, db_default='{}', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Customer',
            name='dormant_since',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
