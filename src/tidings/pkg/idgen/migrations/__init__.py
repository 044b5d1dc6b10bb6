"""The schema of the id generator's worker leases: the ``framework`` branch of the migrations."""
