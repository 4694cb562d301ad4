"""Workbench pages, one module per area; each has a ``router`` and registers its nav entry."""
