"""pymager's benchmark suite: ``make bench`` (full) and ``make bench-quick``. See README "Performance"."""
