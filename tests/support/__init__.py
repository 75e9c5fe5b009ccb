"""Test helpers and the named test world; tests/conftest.py only wires them into fixtures."""
