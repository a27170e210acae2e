"""Files the plugin copies into every output directory, unchanged but for a header.

They are real modules, type-checked and linted with the plugin, but the plugin never
imports them (they need asyncpg, which the plugin does not): it reads their text with
:mod:`importlib.resources`.
"""
