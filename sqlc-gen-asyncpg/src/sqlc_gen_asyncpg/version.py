"""The plugin's version, written into every generated file's header."""

__version__ = "0.4.0"
