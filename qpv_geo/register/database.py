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
#: yoyo's own tables (its default names).
_YOYO_APPLIED = "_yoyo_migration"
_YOYO_LOCK = "yoyo_lock"


def _pending(path: Path, ids: list[str]) -> bool:
    """True unless the register at ``path`` exists and has every migration of ``ids``
    applied (read only: no lock, works on a read-only file)."""
    if not path.exists():
        return True
    try:
        db = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro", uri=True,
                             timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return True
    try:
        applied = {r[0] for r in db.execute(f"SELECT migration_id FROM {_YOYO_APPLIED}")}
    except sqlite3.Error:
        return True
    finally:
        db.close()
    return any(i not in applied for i in ids)


@contextlib.contextmanager
def _migration_lock(path: Path) -> Iterator[None]:
    """Serialise schema upgrades between processes with SQLite's own file lock on a small
    side file (``<register>-migration.lock``): the operating system releases it when its
    owner dies, so a process killed mid-upgrade never blocks the next ones."""
    lock_path = Path(str(path) + "-migration.lock")
    try:
        lock = sqlite3.connect(lock_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise _open_error(path, exc) from exc
    try:
        lock.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as exc:
        lock.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise RegistreError(
                f"Le registre {path} est en cours de mise à jour par un autre programme "
                f"qpv-geo depuis plus de {BUSY_TIMEOUT_S:g} s.",
                hint="Attendez la fin de l'autre commande (ou de la page web qui importe), "
                "puis relancez.") from exc
        raise _open_error(path, exc) from exc
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            lock.execute("ROLLBACK")
        lock.close()


def migrate(path: Path) -> None:
    """Apply the migrations not yet applied to the register at ``path`` (once per process
    and file).

    Nothing is locked when every migration is already applied. Otherwise the upgrade runs
    under :func:`_migration_lock`; a row left in yoyo's lock table by a process killed
    during an upgrade (its lock is gone with it) is stale and removed first.
    """
    path = Path(path)
    key = str(path.resolve())
    if key in _MIGRATED and path.exists():
        return
    from yoyo import get_backend, read_migrations

    migrations = read_migrations(str(MIGRATIONS))
    if not _pending(path, [m.id for m in migrations]):
        _MIGRATED.add(key)
        return
    with _migration_lock(path):
        backend = get_backend("sqlite:///" + urllib.parse.quote(str(path)))
        try:
            # Every live upgrader holds the lock above: a yoyo lock row now is a dead one's.
            with contextlib.suppress(backend.DatabaseError), backend.transaction():
                backend.execute(f"DELETE FROM {_YOYO_LOCK}")
            with backend.lock(timeout=BUSY_TIMEOUT_S):
                todo = backend.to_apply(migrations)
                if todo:
                    backend.apply_migrations(todo)
            _MIGRATED.add(key)
        finally:
            with contextlib.suppress(Exception):
                backend.connection.close()


def _open_error(path: Path, exc: BaseException) -> RegistreError:
    return RegistreError(
        f"Impossible d'ouvrir le registre {path} : {_sqlite_words(exc)}.",
        hint="Vérifiez le dossier des données (QPV_GEO_DATA_DIR) et ses droits, ou "
        "indiquez un autre fichier avec --registre.")


def _sqlite_words(exc: BaseException) -> str:
    """SQLite's and the system's usual failures in French (the original text otherwise)."""
    text = str(exc)
    low = text.lower()
    if "readonly" in low or "read-only" in low or "permission" in low:
        return "fichier ou dossier en lecture seule"
    if "disk is full" in low or "no space" in low:
        return "disque plein"
    if "unable to open" in low:
        return "fichier impossible à ouvrir ou à créer (dossier absent ou protégé)"
    if "not a database" in low or "malformed" in low:
        return "ce fichier n'est pas un registre qpv-geo lisible (base SQLite abîmée ou " \
            "autre fichier)"
    if "locked" in low or "busy" in low:
        return f"registre occupé par un autre programme depuis plus de {BUSY_TIMEOUT_S:g} s"
    return text


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the register; WAL mode, busy timeout."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        migrate(path)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise _open_error(path, exc) from exc
    except Exception as exc:  # yoyo's own errors (its lock, a migration that fails)
        if isinstance(exc, RegistreError):
            raise
        raise _open_error(path, exc) from exc
    db.row_factory = sqlite3.Row
    try:
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        with contextlib.suppress(sqlite3.OperationalError):  # a read-only file stays as is
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # readable, really
    except sqlite3.DatabaseError as exc:
        db.close()
        raise _open_error(path, exc) from exc
    return db


@contextlib.contextmanager
def write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``): concurrent writers queue
    on the busy timeout instead of failing half-way; rolled back on any error."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:  # read-only file, full disk, busy for too long
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        if _sqlite_words(exc) == str(exc):  # not one of those: a bug, shown as such
            raise
        path = next((r[2] for r in db.execute("PRAGMA database_list") if r[1] == "main"), "")
        raise RegistreError(
            f"Écriture impossible dans le registre {path} : {_sqlite_words(exc)} ; rien n'a "
            "été enregistré.",
            hint="Libérez de la place ou vérifiez les droits du fichier et de son dossier, "
            "puis relancez la commande (ou indiquez un autre fichier avec --registre).") \
            from exc
