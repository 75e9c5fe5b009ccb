"""Django's PostgreSQL backend, with bulk inserts as VALUES (see compiler.py)."""
