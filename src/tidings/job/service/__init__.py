"""One handler per consumer group: decode the batch of records, call the use case, nothing else. The groups'
names and the failures each treats as transient live here, next to the topics they read."""
