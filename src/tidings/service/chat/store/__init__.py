"""What chat shares with its jobs: one implementation of each storage layout both sides touch (the message write,
the recent window, the heads cache, the audience read), so the writer and the readers never disagree."""
