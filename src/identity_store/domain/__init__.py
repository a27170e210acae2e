"""The domain: models, ports and errors. Knows nothing of asyncpg or generated code."""
