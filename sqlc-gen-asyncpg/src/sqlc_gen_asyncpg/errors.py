"""The one error the plugin raises for bad input."""


class PluginError(Exception):
    """A request the plugin refuses: bad options or a query it cannot compile.

    The message is one line, printed by the console script to stderr (which sqlc
    shows to the user) before it exits with status 1.
    """
