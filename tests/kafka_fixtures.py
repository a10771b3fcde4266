"""Placeholder until the broker fixtures land (streaming-worker issue)."""
