"""Stores: the database (source of truth), Redis (caches, locks, budgets) and in-process locks."""
