"""ASGI entry point for uvicorn workers: ``gateway.asgi:app`` built from the environment."""

from __future__ import annotations

from gateway import logging as gwlogging
from gateway.app import create_app
from gateway.config import Settings

_settings = Settings()
gwlogging.configure(_settings.log_level)
app = create_app(_settings, freeze_heap=True)
