"""Benchmarks: ``python -m bench`` (``make bench``) compares the repositories with
hand-written asyncpg, the generated functions and SQLAlchemy; see bench/run.py."""
