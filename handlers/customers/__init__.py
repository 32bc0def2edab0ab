"""Customers: external contacts, their relationships, tags (mirrored to WeCom) and purchases."""
