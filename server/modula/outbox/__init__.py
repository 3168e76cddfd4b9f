"""After-commit delivery: side effects queued in the outbox table with their change, sent by a
background worker once it committed, at least once (see db/outbox.py for the table's rules)."""
