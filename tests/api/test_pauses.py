"""A served gateway does not stop every request for a walk over what it built at start-up."""

from __future__ import annotations

import gc
import time

from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database


def _full_collection_seconds() -> float:
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start


def test_a_full_collection_while_serving_skips_what_start_up_built(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    # Python's full collection walks every tracked object with the interpreter locked:
    # over the policies, schemas, routes and metadata of a started gateway, 100-180 ms
    # during which no request moves (the 99th percentile of the latencies).
    app = create_app(settings, clock=clock, db=database, freeze_heap=True)  # as gateway.asgi
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        serving = min(_full_collection_seconds() for _ in range(3))
        gc.unfreeze()
        try:
            walking_everything = min(_full_collection_seconds() for _ in range(3))
        finally:
            gc.freeze()
    try:
        assert serving * 5 < walking_everything
        assert gc.get_freeze_count() == 0  # and nothing stays frozen once the app stops
    finally:  # as the test session keeps what is alive (tests/conftest.py)
        gc.collect()
        gc.freeze()
