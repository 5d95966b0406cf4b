"""Fixtures for the whole suite: the private servers (tests/_servers.py), registered once here so a
session-scoped server is shared by every directory that uses it."""

pytest_plugins = ("tests._servers",)
