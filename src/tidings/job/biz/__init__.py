"""The job module's use cases and the ports they need: storing, pushing and re-deleting what chat and the caches
publish. No driver, framework or generated code."""
