"""What account shares with the task module: one implementation of each write both run on account's tables."""
