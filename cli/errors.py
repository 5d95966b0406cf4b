"""Errors the CLI reports as one line (cli/main.py's `main`), importable by every cli module."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the command line or its input: reported as one line, exit 2."""
