"""The indexes the models declared but the database never got.

The migration runner creates a field's `db_index` only with its table on PostgreSQL, and on
SQLite not even then (nor `indexes` and `unique_together`): welcome_send.inbox_id and
purchase.order_id had no index anywhere, and a sandbox lacked a dozen. The names are the
runner's own, so where an index exists already (PostgreSQL) nothing happens.
tests/test_schema_indexes.py checks every declared index exists after migrating.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

INDEXES = [
    ("idx_customer_mobile_272313", "customer", "mobile"),
    ("idx_customer_region_7ca937", "customer", "region"),
    ("idx_welcome_sen_inbox_i_846709", "welcome_send", "inbox_id"),
    ("idx_outbox_kind_15726f", "outbox", "kind"),
    ("idx_outbox_recipie_721098", "outbox", "recipient"),
    ("idx_outbox_status_73e069", "outbox", "status, next_attempt_ms"),
    ("idx_ledger_entr_period_5fe656", "ledger_entry", "period"),
    ("idx_ledger_entr_payout__021cfc", "ledger_entry", "payout_id"),
    ("idx_payout_install_919b42", "payout", "installer"),
    ("idx_payout_region_9e3652", "payout", "region"),
    ("idx_payout_ticket__ba3d09", "payout", "ticket_id"),
    ("idx_purchase_order_i_84ae70", "purchase", "order_id"),
]


class Migration(migrations.Migration):
    dependencies = [('models', '0024_ticket_photos')]

    initial = False

    operations = [
        *[ops.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})",
                     reverse_sql=f"DROP INDEX IF EXISTS {name}")
          for name, table, columns in INDEXES],
        # Without its unique index (SQLite) a care could be recorded twice for one period
        # (it was sent once: the outbox key is unique); the earliest record is kept.
        ops.RunSQL(
            "DELETE FROM care_record WHERE id NOT IN (SELECT MIN(id) FROM care_record"
            " GROUP BY schedule, customer_id, period)",
            reverse_sql="SELECT 1"),
        ops.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS uid_care_record_schedul_6e0617"
            " ON care_record (schedule, customer_id, period)",
            reverse_sql="SELECT 1"),
    ]
