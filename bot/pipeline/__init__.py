"""The durable pipeline: intake, the inbox worker and its dispatcher, the outbox, senders."""
