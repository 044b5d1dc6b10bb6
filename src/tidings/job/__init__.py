"""Event consumers: persist messages, push to online devices, index for search, invalidate caches."""
