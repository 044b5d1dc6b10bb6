"""Back-office use cases: every operator action is audited."""
