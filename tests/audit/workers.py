"""Work run in separate OS processes by the concurrency tests (importable by ``spawn``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from gateway.audit import log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.db import Database

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def append_many(url: str, worker: int, count: int, barrier: Barrier, results: Queue[Any]) -> None:
    """Append ``count`` events, one transaction each, after all workers are ready.

    Puts ``(worker, entry ids)`` on ``results``, or ``(worker, error text)`` on failure.
    """
    database = Database(url)
    try:
        indexes = []
        barrier.wait(timeout=60)
        for i in range(count):
            with database.write() as session:
                indexes.append(
                    log.append(
                        session,
                        AuditEvent(
                            type=AuditEventType.TOKEN_ISSUE,
                            at=START + timedelta(seconds=i),
                            actor_principal=f"worker-{worker}",
                            refs={"worker": worker, "i": i},
                        ),
                    )
                )
        results.put((worker, indexes))
    except Exception as exc:  # reported to the test, which fails with it
        results.put((worker, f"{type(exc).__name__}: {exc}"))
    finally:
        database.dispose()
