"""Adapters of the job's ports: chat's published store, the route table, the bff's Deliver, Redis and Prometheus.
Each turns its driver's failures into ``biz.errors.Unavailable``."""
