"""Settlement: payouts and an immutable ledger when tickets close, approvals, statements."""
