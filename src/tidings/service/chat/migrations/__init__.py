"""Chat's schema: the ``chat`` branch of the migrations, one revision per change."""
