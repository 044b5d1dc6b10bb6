"""Scheduled work, each task run by one process at a time: retention, stats, reconciliation, dead letters, reindex."""
