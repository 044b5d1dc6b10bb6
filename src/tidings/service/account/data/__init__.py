"""Adapters implementing the biz ports: SQLAlchemy repos, Redis caches, the event producer."""
