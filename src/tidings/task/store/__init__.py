"""What the task module publishes for other modules to read from its tables: the activity rollups (``stats``)."""
