"""Files the plugin copies into every output directory, unchanged but for a header.

They are real modules, type-checked and linted with the plugin, but the plugin never
imports them (they need asyncpg, which the plugin does not): it reads their text with
:mod:`importlib.resources`.

Optional pieces are marked: the lines between ``# [piece]`` and ``# [/piece]``, and a
line ending in ``  # [piece]``, are copied only into a package that uses ``piece`` (and
the marks never): ``cursor`` (``iter_`` functions), ``rows_affected`` (``:execrows``,
``:copyfrom``), ``json`` (json, jsonb columns or parameters), ``bits`` (bit, varbit).
"""
