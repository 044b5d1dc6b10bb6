"""The bff's use cases (auth checks, screen aggregation) and the ports for the services behind it."""
