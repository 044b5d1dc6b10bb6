"""HTTP routes of the back office."""
