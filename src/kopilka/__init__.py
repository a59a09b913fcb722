"""Kopilka: an open-source loyalty processing center."""

__version__ = "0.1.0"
