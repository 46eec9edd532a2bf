"""The sandbox's own store: one SQLite file in its store folder, shared by the four systems it plays."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    system TEXT NOT NULL, object TEXT NOT NULL, id TEXT NOT NULL, ext_id TEXT,
    modified TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL,
    PRIMARY KEY (system, object, id)
);
CREATE INDEX IF NOT EXISTS records_modified ON records (system, object, modified, id);
CREATE INDEX IF NOT EXISTS records_ext ON records (system, object, ext_id);
CREATE TABLE IF NOT EXISTS writes (
    n INTEGER PRIMARY KEY AUTOINCREMENT, system TEXT, object TEXT, id TEXT, ext_id TEXT,
    created INTEGER, at TEXT, data TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hooks (
    n INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, headers TEXT, body TEXT, valid INTEGER, at TEXT
);
CREATE TABLE IF NOT EXISTS hook_secrets (name TEXT PRIMARY KEY, secret TEXT);
"""


def now_ms() -> str:
    """The sandbox clock: UTC, millisecond precision (so rows written together share a timestamp)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def norm_ts(value: str) -> str:
    from .query import parse_datetime

    parsed = parse_datetime(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


class Store:
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "sandbox.sqlite3"
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    # --- ids ----------------------------------------------------------------------------------------------
    def next_number(self, name: str) -> int:
        with self.lock:
            row = self.db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            value = (row["value"] if row else 0) + 1
            self.db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (name, value))
            return value

    # --- records ------------------------------------------------------------------------------------------
    @staticmethod
    def _row(row: sqlite3.Row) -> dict:
        return {
            "system": row["system"],
            "object": row["object"],
            "id": row["id"],
            "ext_id": row["ext_id"],
            "modified": row["modified"],
            "deleted": bool(row["deleted"]),
            "data": json.loads(row["data"]),
        }

    def get(self, system: str, obj: str, rid: str) -> dict | None:
        with self.lock:
            row = self.db.execute(
                "SELECT * FROM records WHERE system=? AND object=? AND id=?", (system, obj, rid)
            ).fetchone()
        return self._row(row) if row else None

    def by_ext(self, system: str, obj: str, ext_id: str) -> list[dict]:
        with self.lock:
            rows = self.db.execute(
                "SELECT * FROM records WHERE system=? AND object=? AND ext_id=? ORDER BY id", (system, obj, ext_id)
            ).fetchall()
        return [self._row(r) for r in rows]

    def all(self, system: str, obj: str, *, include_deleted: bool = True) -> list[dict]:
        sql = "SELECT * FROM records WHERE system=? AND object=?"
        if not include_deleted:
            sql += " AND deleted=0"
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY modified, id", (system, obj)).fetchall()
        return [self._row(r) for r in rows]

    def put(
        self,
        system: str,
        obj: str,
        rid: str,
        data: dict,
        *,
        ext_id: str | None = None,
        modified: str | None = None,
        deleted: bool = False,
        created: bool = False,
        log: bool = True,
    ) -> dict:
        modified = norm_ts(modified) if modified else now_ms()
        with self.lock:
            self.db.execute("BEGIN")
            try:
                self.db.execute(
                    "INSERT OR REPLACE INTO records (system, object, id, ext_id, modified, deleted, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (system, obj, rid, ext_id, modified, int(deleted), json.dumps(data, sort_keys=True)),
                )
                if log:
                    self.db.execute(
                        "INSERT INTO writes (system, object, id, ext_id, created, at, data) VALUES (?,?,?,?,?,?,?)",
                        (system, obj, rid, ext_id, int(created), modified, json.dumps(data, sort_keys=True)),
                    )
                self.db.execute("COMMIT")
            except Exception:
                self.db.execute("ROLLBACK")
                raise
        return {"system": system, "object": obj, "id": rid, "ext_id": ext_id, "modified": modified,
                "deleted": deleted, "data": data}  # fmt: skip

    def writes(self, system: str | None = None, obj: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM writes WHERE 1=1", []
        if system:
            sql, args = sql + " AND system=?", [*args, system]
        if obj:
            sql, args = sql + " AND object=?", [*args, obj]
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY n", args).fetchall()
        return [
            {"n": r["n"], "system": r["system"], "object": r["object"], "id": r["id"], "ext_id": r["ext_id"],
             "created": bool(r["created"]), "at": r["at"], "data": json.loads(r["data"])}
            for r in rows
        ]  # fmt: skip

    # --- webhooks received ----------------------------------------------------------------------------------
    def hook_secret(self, name: str) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT secret FROM hook_secrets WHERE name=?", (name,)).fetchone()
        return row["secret"] if row else None

    def hook_secret_set(self, name: str, secret: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO hook_secrets (name, secret) VALUES (?, ?)", (name, secret))

    def hook_add(self, name: str, headers: dict, body: str, valid: bool) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO hooks (name, headers, body, valid, at) VALUES (?, ?, ?, ?, ?)",
                (name, json.dumps(headers), body, int(valid), now_ms()),
            )

    def hooks(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM hooks WHERE name=? ORDER BY n", (name,)).fetchall()
        return [{"headers": json.loads(r["headers"]), "body": json.loads(r["body"]), "valid": bool(r["valid"])}
                for r in rows]  # fmt: skip

    def reset(self) -> None:
        with self.lock:
            for table in ("records", "writes", "counters", "hooks", "hook_secrets"):
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608
