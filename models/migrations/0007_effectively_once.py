from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.outbox import OutboxStatus
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('models', '0006_ledger_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InboxHandled',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('inbox_id', fields.BigIntField()),
                ('handler', fields.CharField(max_length=96)),
                ('done_ms', fields.BigIntField()),
            ],
            options={'table': 'inbox_handled', 'app': 'models', 'unique_together': (('inbox_id', 'handler'),), 'pk_attr': 'id', 'table_description': 'A handler that finished for an inbox row.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WelcomeSend',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('external_userid', fields.CharField(default='', max_length=64)),
                ('event_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='sending', max_length=8)),
                ('claimed_by', fields.CharField(default='', max_length=64)),
                ('lease_until_ms', fields.BigIntField(default=0)),
                ('attempted', fields.BooleanField(default=False)),
                ('detail', fields.TextField(default='', unique=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'welcome_send', 'app': 'models', 'pk_attr': 'id', 'table_description': "One welcome code's delivery."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='GroupMessageReceipt',
            name='slot',
            field=fields.SmallIntField(default=1, db_default=0),
        ),
        # Number the receipts each customer already has this month before slots become unique.
        ops.RunSQL(
            "UPDATE group_message_receipt SET slot = (SELECT COUNT(*) FROM group_message_receipt g "
            "WHERE g.external_userid = group_message_receipt.external_userid "
            "AND g.month = group_message_receipt.month AND g.id <= group_message_receipt.id)",
            reverse_sql="SELECT 1"),
        ops.AddConstraint(
            model_name='GroupMessageReceipt',
            constraint=UniqueConstraint(fields=('external_userid', 'month', 'slot'), name=None),
        ),
        ops.AlterModelOptions(
            name='JobRun',
            options={'table': 'job_run', 'app': 'models', 'unique_together': (('job', 'slot'),), 'pk_attr': 'id', 'table_description': "A scheduled job's slot, unique per (job, slot) so one instance runs it at a time."},
        ),
        ops.AddField(
            model_name='JobRun',
            name='attempts',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='JobRun',
            name='lease_until_ms',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='JobRun',
            name='next_attempt_ms',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='JobRun',
            name='status',
            field=fields.CharField(default='running', db_default='done', max_length=8),
        ),
        # Runs claimed and never finished (their process died, or they failed) are retried.
        ops.RunSQL("UPDATE job_run SET status = 'failed' WHERE finished_at IS NULL",
                   reverse_sql="SELECT 1"),
        ops.AddField(
            model_name='LedgerEntry',
            name='reason',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AlterField(
            model_name='OutboxMessage',
            name='status',
            field=fields.CharEnumField(default=OutboxStatus.PENDING, description='PENDING: pending\nSENDING: sending\nSENT: sent\nFAILED: failed\nUNKNOWN: unknown', enum_type=OutboxStatus, max_length=8),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='attempt_started_ms',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='msgid',
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='progress',
            field=fields.JSONField(default=dict, db_default='{}', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
