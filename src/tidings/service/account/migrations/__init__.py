"""Account's schema: the ``account`` branch of the migrations, one revision per change."""
