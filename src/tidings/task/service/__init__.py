"""The scheduled entries: each names a use case's run, how often it is due and how long it may take."""
