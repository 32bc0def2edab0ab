"""Pure domain rules: data in, decisions out, no I/O (routing, SLA time, breaker, stages)."""
