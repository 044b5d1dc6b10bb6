"""The task module's use cases (retention, ...) and the ports they need. No driver, framework or generated code."""
