"""Administration from chat: rules reload, jobs, the outbox, the audit log."""
