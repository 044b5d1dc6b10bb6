"""The task's runner: the scheduler, which runs each task under its lease. It holds no domain; it stays here
while the task module is its only user."""
