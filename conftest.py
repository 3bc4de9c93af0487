"""Loads the project's pytest plugin: step selection and ``--impl DIR``."""

pytest_plugins = ["shared.testing.plugin"]
