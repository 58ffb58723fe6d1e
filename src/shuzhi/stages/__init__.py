"""One module per stage, each of pure DataFrame → DataFrame functions taking plain values (rules,
code meanings, policies, keys as values): no reads, writes, clock, settings or config loading.
The jobs in ``jobs/`` are the thin shells around them (read → transform → write → conservation →
audit)."""
