"""Scheduled work with one runner at a time: retention, daily stats, counter reconciliation, reindex."""
