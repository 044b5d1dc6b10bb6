"""The task module's schema: the ``task`` branch of the migrations."""
