"""The journal's schema, versioned with ``PRAGMA user_version``, and its migrations.

Version 0 is the journal before order lifecycles (no ``user_version``):
orders were PENDING, ACCEPTED, REJECTED or FILLED and fills had no fee.
Version 1 adds the lifecycle: each order's client and venue order ids, type,
price and time in force, filled quantity and fees; every execution report;
every difference reconciliation found. Version 2 adds ``marks``, each
symbol's last market price, so a restarted executor values its positions
(the daily loss limit) as the one before it did. Version 3 adds
``signal_gaps``, the signal ranges it gave up waiting for, so a restarted
executor still asks for them. Version 4 adds ``meta`` with the journal's
``client_id_salt``, random, made once when the journal is created or migrated
and mixed into every new client order id, so two journals (runs) on one
account never send the same id; orders already journaled keep theirs. Its
migration also takes the fees paid before each ``risk_days`` day off that
day's start (the daily loss counts fees since version 4). Version 5 adds each
fill's ``fee_qty`` (the part of its fee taken out of the traded asset, which
the position is net of) and ``fee_asset`` (a third asset the fee was paid in).
Version 6 adds each signal's ``closes`` (the entry signal an exit closes, ''
for none) and indexes it and the fills by order: the executor sends an exit
no larger than its entry holds (`closing`).
A journal is migrated in one transaction when opened; one of a newer version
is refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path

from workbench.domain.model import client_order_id
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.runner.parent_link import try_lock

SCHEMA_VERSION = 6

_V0_TABLES = """
CREATE TABLE IF NOT EXISTS signals (
    signal_id TEXT PRIMARY KEY, strategy_id TEXT NOT NULL, seq INTEGER NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    ts_ns INTEGER NOT NULL, reason TEXT, condition_id TEXT, received_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trading_states (
    ts_ns INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_ends (
    strategy_id TEXT PRIMARY KEY, ticks INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    received_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_days (day TEXT PRIMARY KEY, start_pnl REAL NOT NULL);
"""

_V1_NEW_TABLES = """
CREATE TABLE IF NOT EXISTS order_reports (
    order_id TEXT NOT NULL, status TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    venue_order_id TEXT NOT NULL DEFAULT '', fill_id TEXT NOT NULL DEFAULT '',
    qty REAL NOT NULL DEFAULT 0, price REAL NOT NULL DEFAULT 0, fee REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '', source TEXT NOT NULL, recorded_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS order_reports_by_order ON order_reports(order_id);
CREATE TABLE IF NOT EXISTS reconciliations (
    recorded_ns INTEGER NOT NULL, kind TEXT NOT NULL, order_id TEXT NOT NULL DEFAULT '',
    symbol TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL
);
"""

_V2_NEW_TABLES = """
CREATE TABLE IF NOT EXISTS marks (
    symbol TEXT PRIMARY KEY, price REAL NOT NULL, ts_ns INTEGER NOT NULL
);
"""

_V3_NEW_TABLES = """
CREATE TABLE IF NOT EXISTS signal_gaps (
    strategy_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    PRIMARY KEY (strategy_id, first_seq)
);
"""

_V4_NEW_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_V5_FILL_COLUMNS = ("fee_qty REAL NOT NULL DEFAULT 0", "fee_asset TEXT NOT NULL DEFAULT ''")

_V6_SIGNAL_COLUMN = "closes TEXT NOT NULL DEFAULT ''"
_V6_INDEXES = """
CREATE INDEX IF NOT EXISTS signals_by_entry ON signals(closes) WHERE closes != '';
CREATE INDEX IF NOT EXISTS fills_by_order ON fills(order_id)
"""

_V1 = (
    _V0_TABLES
    + """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, signal_id TEXT NOT NULL UNIQUE REFERENCES signals(signal_id),
    symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    ts_ns INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    updated_ns INTEGER NOT NULL,
    client_order_id TEXT NOT NULL DEFAULT '', venue_order_id TEXT NOT NULL DEFAULT '',
    order_type TEXT NOT NULL DEFAULT 'MARKET', order_price REAL NOT NULL DEFAULT 0,
    tif TEXT NOT NULL DEFAULT 'GTC', filled_qty REAL NOT NULL DEFAULT 0,
    fees REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_client_id ON orders(client_order_id);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(order_id),
    signal_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL,
    price REAL NOT NULL, ts_ns INTEGER NOT NULL, recorded_ns INTEGER NOT NULL,
    fee REAL NOT NULL DEFAULT 0, fee_qty REAL NOT NULL DEFAULT 0,
    fee_asset TEXT NOT NULL DEFAULT ''
);
"""
    + _V1_NEW_TABLES
)

_OPEN_STATUSES = "('PENDING_NEW', 'ACCEPTED', 'PARTIALLY_FILLED')"


class JournalFile:
    """A journal's SQLite connection and the lock that keeps it this process's.

    Two executors writing one journal (a second started by hand, a fixed
    ``executor.journal_path`` shared by two runs) would each trust positions
    the other changes. A lock on ``<journal>.lock`` (``lockf``: per process,
    gone with it), held while the journal is open, refuses the second process.

    Raises (on opening):
        TemporaryError: another process holds the journal, or SQLite says it
            is locked or the disk is full (a restart may find it free).
        ConfigurationError: the file or its folder cannot be made or opened,
            or it is not a journal (not a database, damaged, or newer),
            naming the path.
    """

    def __init__(self, path: str, *, sync_commits: bool) -> None:
        self.path = path
        self._lock_fd: int | None = None
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._lock_fd = _lock(path)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except OSError as e:
            self.close()
            raise ConfigurationError(f"journal {path}: cannot open it: {e}") from e
        try:
            if path == ":memory:":  # a fast replay's: nothing to survive a crash for
                self.db.execute("PRAGMA journal_mode=MEMORY")
                self.db.execute("PRAGMA synchronous=OFF")
            else:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if sync_commits else 'NORMAL'}")
            open_schema(self.db, path)
        except sqlite3.Error as e:
            self.close()
            raise _open_error(path, e) from e
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection, then let the journal go."""
        with contextlib.suppress(AttributeError):
            self.db.close()
        if self._lock_fd is not None:
            _unlock(self.path)
            self._lock_fd = None


_HELD: dict[str, list[int]] = {}
"""Journal locks this process holds: path -> [fd, opens]. A ``lockf`` lock is the
process's, and closing any descriptor of the file drops it: one descriptor per
journal, closed when its last `JournalFile` is (a notebook may open one twice)."""


def _unlock(path: str) -> None:
    held = _HELD[os.path.realpath(path)]
    held[1] -= 1
    if not held[1]:
        del _HELD[os.path.realpath(path)]
        os.close(held[0])  # the lock goes with it


def _lock(path: str) -> int:
    held = _HELD.get(os.path.realpath(path))
    if held is not None:  # this process has it already (a restart simulated in-process)
        held[1] += 1
        return held[0]
    fd = try_lock(f"{path}.lock", 0o600)
    if fd is None:
        holder = Path(f"{path}.lock").read_text(errors="replace").strip()[:32] or "?"
        raise TemporaryError(
            f"journal {path} is in use by another process (pid {holder}): one executor per "
            "journal; stop the other, or give this one its own executor.journal_path"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[os.path.realpath(path)] = [fd, 1]
    return fd


_TEMPORARY = {5, 6, 10, 13}  # SQLITE_BUSY, LOCKED, IOERR, FULL: a restart may find it well
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, NOTADB


def _open_error(path: str, e: sqlite3.Error) -> Exception:
    """What a failure to open a journal means for its operator, naming the file.

    Only a damaged file or not a database is called so; a read-only one (a
    journal restored as root, say) is a permissions problem, to be fixed in
    place: moving it aside would lose its open orders and positions.
    """
    code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF  # the primary result code
    if code in _TEMPORARY:
        return TemporaryError(f"journal {path}: {e}")
    if code in _DAMAGED:
        return ConfigurationError(
            f"journal {path}: {e}: not a journal this workbench can read (damaged?); "
            "restore it from a backup, or move it aside to start a new one (the venue's "
            "orders and positions are reconciled at start)"
        )
    return ConfigurationError(
        f"journal {path}: cannot open or write it: {e}: check its and its folder's owner "
        "and mode (executor.journal_path)"
    )


def open_schema(db: sqlite3.Connection, path: str) -> None:
    """Create the schema in an empty journal, or migrate an older one to `SCHEMA_VERSION`.

    Raises:
        ConfigurationError: the journal was written by a newer workbench.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"journal {path} has schema version {version}; this workbench reads up to "
            f"{SCHEMA_VERSION}: use the newer workbench that wrote it"
        )
    if version == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        has_orders = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='orders'"
        ).fetchone()
        if not has_orders:
            _run(db, _V1)
        elif version == 0:
            _migrate_0_to_1(db)
        _run(db, _V2_NEW_TABLES + _V3_NEW_TABLES + _V4_NEW_TABLES)
        if has_orders and version < 4:
            # Days started before version 4 were valued before fees; the daily
            # loss now counts them, so take off what was paid before each day.
            db.execute(
                "UPDATE risk_days SET start_pnl = start_pnl - (SELECT COALESCE(SUM(fee), 0) "
                "FROM fills WHERE ts_ns < CAST(strftime('%s', risk_days.day) AS INTEGER) "
                "* 1000000000)"
            )
        columns = {r[1] for r in db.execute("PRAGMA table_info(fills)")}
        for ddl in _V5_FILL_COLUMNS:
            if ddl.split()[0] not in columns:
                db.execute(f"ALTER TABLE fills ADD COLUMN {ddl}")
        if "closes" not in {r[1] for r in db.execute("PRAGMA table_info(signals)")}:
            db.execute(f"ALTER TABLE signals ADD COLUMN {_V6_SIGNAL_COLUMN}")
        _run(db, _V6_INDEXES)
        db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('client_id_salt', ?)", (new_client_id_salt(),)
        )
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def rollback(db: sqlite3.Connection) -> None:
    """End a failed transaction, keeping the error that failed it.

    SQLite has already rolled back after some errors (a full disk, I/O): a
    second ROLLBACK would raise "no transaction is active" in their place.
    """
    if db.in_transaction:
        db.execute("ROLLBACK")


def new_client_id_salt() -> str:
    """A fresh random salt for a new journal's client order ids."""
    return secrets.token_hex(8)


def client_id_salt(db: sqlite3.Connection) -> str:
    """The journal's salt for client order ids (see the module docstring)."""
    return str(db.execute("SELECT value FROM meta WHERE key='client_id_salt'").fetchone()[0])


def _run(db: sqlite3.Connection, script: str) -> None:
    # Statement by statement: executescript would commit the open transaction.
    for stmt in script.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _migrate_0_to_1(db: sqlite3.Connection) -> None:
    """Today's lifecycle columns and tables onto a version-0 journal, keeping every row."""
    for ddl in (
        "ALTER TABLE orders ADD COLUMN client_order_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE orders ADD COLUMN venue_order_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE orders ADD COLUMN order_type TEXT NOT NULL DEFAULT 'MARKET'",
        "ALTER TABLE orders ADD COLUMN order_price REAL NOT NULL DEFAULT 0",
        "ALTER TABLE orders ADD COLUMN tif TEXT NOT NULL DEFAULT 'GTC'",
        "ALTER TABLE orders ADD COLUMN filled_qty REAL NOT NULL DEFAULT 0",
        "ALTER TABLE orders ADD COLUMN fees REAL NOT NULL DEFAULT 0",
        "ALTER TABLE fills ADD COLUMN fee REAL NOT NULL DEFAULT 0",
    ):
        db.execute(ddl)
    _run(db, _V0_TABLES + _V1_NEW_TABLES)
    rows = db.execute("SELECT order_id, signal_id FROM orders").fetchall()
    # Unsalted: the ids versions 1-3 gave these orders (a venue may know them so).
    db.executemany(
        "UPDATE orders SET client_order_id=? WHERE order_id=?",
        [(client_order_id(sid), oid) for oid, sid in rows],
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS orders_by_client_id ON orders(client_order_id)")
    # Version 0 wrote PENDING for "sent or about to be": PENDING_NEW now.
    db.execute("UPDATE orders SET status='PENDING_NEW' WHERE status='PENDING'")
    # The index the sums below need (version 6 made it): without, each order scanned
    # every fill, and a 10,000-order journal outlasted the executor's start timeout.
    db.execute("CREATE INDEX IF NOT EXISTS fills_by_order ON fills(order_id)")
    db.execute(
        "UPDATE orders SET filled_qty = "
        "(SELECT COALESCE(SUM(qty), 0) FROM fills WHERE fills.order_id = orders.order_id)"
    )
    # The history those orders had, as reports: one per fill, one per rejection.
    db.execute(
        "INSERT INTO order_reports (order_id, status, ts_ns, fill_id, qty, price, source, "
        "recorded_ns) SELECT f.order_id, 'FILLED', f.ts_ns, f.fill_id, f.qty, f.price, "
        "'migration', f.recorded_ns FROM fills f ORDER BY f.rowid"
    )
    db.execute(
        "INSERT INTO order_reports (order_id, status, ts_ns, reason, source, recorded_ns) "
        "SELECT order_id, 'REJECTED', ts_ns, reason, 'migration', updated_ns FROM orders "
        "WHERE status='REJECTED' ORDER BY rowid"
    )


def open_statuses() -> str:
    """The SQL tuple of order statuses that can still change."""
    return _OPEN_STATUSES
