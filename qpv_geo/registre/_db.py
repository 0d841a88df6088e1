"""The register's SQLite file: opening (WAL, busy timeout), schema migrations, transactions.

Migrations are the files of ``migrations/`` applied by yoyo-migrations (a small, maintained
migration library without an ORM), which records what was applied in its own tables and
serialises concurrent upgrades with a lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from qpv_geo.exceptions import RegistreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 30.0


_MIGRATED: set[str] = set()


def migrate(path: Path) -> None:
    """Apply the migrations not yet applied to the register at ``path`` (once per process
    and file)."""
    key = str(Path(path).resolve())
    if key in _MIGRATED and Path(path).exists():
        return
    from yoyo import get_backend, read_migrations

    backend = get_backend("sqlite:///" + urllib.parse.quote(str(path)))
    try:
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock(timeout=BUSY_TIMEOUT_S):
            todo = backend.to_apply(migrations)
            if todo:
                backend.apply_migrations(todo)
        _MIGRATED.add(key)
    finally:
        with contextlib.suppress(Exception):
            backend.connection.close()


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the register; WAL mode, busy timeout."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        migrate(path)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise RegistreError(
            f"Impossible d'ouvrir le registre {path} : {exc}.",
            hint="Vérifiez le dossier des données (QPV_GEO_DATA_DIR) et ses droits, ou "
            "indiquez un autre fichier avec --registre.") from exc
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


@contextlib.contextmanager
def write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``): concurrent writers queue
    on the busy timeout instead of failing half-way; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
