"""The task's runner: the scheduler and who of the task processes runs it (leadership). They hold no domain; they
stay here while the task module is their only user."""
