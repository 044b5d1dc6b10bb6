"""Domain types, use cases and the ports they need."""
