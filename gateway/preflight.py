"""Checks run before serving: schema current, key files private, production safe.

Each failure raises PreflightError with a message an operator can act on.
"""

from __future__ import annotations

import stat
from pathlib import Path

from sqlmodel import select

from gateway.config import Mode, Settings
from gateway.db import Database, ensure_schema_current
from gateway.errors import PreflightError as PreflightError
from gateway.errors import SchemaNotCurrentError
from gateway.models.partners import Partner

KEY_DIR_ALLOWED_PUBLIC = frozenset({"README.md", ".gitignore", ".gitkeep"})


def loose_key_files(keys_dir: Path) -> list[Path]:
    """Return key files (and the folder itself) that group or others can access."""
    if not keys_dir.exists():
        return []
    loose = []
    if keys_dir.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        loose.append(keys_dir)
    for path in sorted(keys_dir.rglob("*")):
        if path.name in KEY_DIR_ALLOWED_PUBLIC and path.parent == keys_dir:
            continue
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            loose.append(path)
    return loose


def run(settings: Settings, db: Database) -> None:
    """Raise PreflightError unless the gateway may serve with these settings and store."""
    try:
        ensure_schema_current(db)
    except SchemaNotCurrentError as exc:
        raise PreflightError(exc.detail) from exc
    loose = loose_key_files(settings.keys_dir)
    if loose:
        names = ", ".join(str(p) for p in loose[:5])
        raise PreflightError(
            f"key ring files are readable by group or others: {names}; "
            f"run `chmod -R go-rwx {settings.keys_dir}`"
        )
    if settings.mode is Mode.PRODUCTION:
        with db.read() as session:
            demo = session.exec(select(Partner.id).where(Partner.is_demo == True)).first()  # noqa: E712
        if demo is not None:
            raise PreflightError(
                "refusing production mode: the database holds demo partners; "
                "use a fresh database for production"
            )
