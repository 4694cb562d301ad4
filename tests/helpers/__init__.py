"""Helpers shared by test modules (instead of imports between test modules)."""
