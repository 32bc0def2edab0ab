"""Observability: scrmbot's Prometheus metrics, defined once and imported where things happen.

A leaf of the framework: it imports nothing of ours, so every layer above (the pipeline, the
WeCom client, the scheduler, features) may count into it. The endpoint that renders them is
in the composition root (bot/app/metrics.py).
"""
