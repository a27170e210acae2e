"""Where the generated layer lives: ``identity_store._generated`` once the package
installs it, ``generated`` at the top level before that."""

from __future__ import annotations

try:
    from identity_store._generated import events as gen_events
    from identity_store._generated import tokens as gen_tokens
    from identity_store._generated import users as gen_users
    from identity_store._generated.db import init_connection
except ImportError:  # the layout before issue 9
    from generated import events as gen_events  # type: ignore[no-redef]
    from generated import tokens as gen_tokens  # type: ignore[no-redef]
    from generated import users as gen_users  # type: ignore[no-redef]
    from generated.db import init_connection  # type: ignore[no-redef]

__all__ = ["gen_events", "gen_tokens", "gen_users", "init_connection"]
