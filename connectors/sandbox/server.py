"""The sandbox HTTP server: CRM (Salesforce REST style), ERP (NetSuite style), PSA (Kantata style), HR
(Workday report style), a webhook receiver, and `/_admin` for seeding, inspection and fault switches.

Each system speaks a faithful subset of its real API shape; see the handlers below for the exact routes.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import hmac
import json
import re
import socket
import sqlite3
import sys
import threading
import time
import uuid
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .query import QueryError, parse_datetime, parse_select
from .store import Store

SF_VERSION = "v60.0"
SF_PREFIX = f"/services/data/{SF_VERSION}"
CRM_OBJECTS = {"Account": "001", "Opportunity": "006", "Contract": "800", "Project__c": "a01"}
CRM_EXT_FIELD = "Hub_Id__c"
ERP_TYPES = ("customer", "contract", "legalentity", "ratecard", "job")
PSA_OBJECTS = ("workspaces",)
HR_OBJECTS = ("workers",)
SYSTEMS = ("crm", "erp", "psa", "hr", "hooks")


class _Drop(Exception):
    """Close the connection without answering (the write was applied)."""


class Reply(Exception):
    def __init__(self, status: int, body=None, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _sf_ts(modified: str) -> str:
    return modified[:-1] + "+0000"


class Faults:
    """Fault switches per system. Counters are consumed by the calls they affect."""

    def __init__(self):
        self.lock = threading.Lock()
        self.state: dict[str, dict] = {}
        self.calls: dict[str, int] = {}

    def set(self, system: str, changes: dict) -> dict:
        with self.lock:
            if changes.pop("clear", False):
                self.state.pop(system, None)
            current = self.state.setdefault(system, {})
            current.update(changes)
            return dict(current)

    def take(self, system: str, name: str) -> bool:
        with self.lock:
            state = self.state.get(system, {})
            if state.get(name, 0) > 0:
                state[name] -= 1
                return True
            return False

    def get(self, system: str, name: str, default=None):
        with self.lock:
            return self.state.get(system, {}).get(name, default)

    def item_fail(self, system: str, ext_id: str) -> str | None:
        """The error code an item of a composite call fails with (consumed once per `times`)."""
        with self.lock:
            items = self.state.get(system, {}).get("item_fail", {})
            spec = items.get(ext_id)
            if not spec:
                return None
            times = spec.get("times", 1)
            if times is not None:
                if times <= 0:
                    return None
                spec["times"] = times - 1
            return spec.get("code", "UNABLE_TO_LOCK_ROW")

    def count(self, system: str) -> None:
        with self.lock:
            self.calls[system] = self.calls.get(system, 0) + 1


class Sandbox:
    def __init__(self, store: Store):
        self.store = store
        self.faults = Faults()
        self.locators: dict[str, dict] = {}
        self.locator_lock = threading.Lock()

    # --- ids ----------------------------------------------------------------------------------------------
    def new_id(self, system: str, obj: str) -> str:
        n = self.store.next_number(f"{system}:{obj}")
        if system == "crm":
            return f"{CRM_OBJECTS.get(obj, 'a0Z')}5g00000{n:08d}"
        if system == "erp":
            return f"CN-{n:05d}" if obj == "contract" else str(1000 + n)
        if system == "hr":
            return f"W{n:06d}"
        return str(n)

    def admin_put(self, item: dict) -> dict:
        system, obj = item["system"], item["object"]
        rid = item.get("id")
        existing = self.store.get(system, obj, rid) if rid else None
        data = dict(item.get("data") or {})
        if existing and item.get("merge", True):
            data = {**existing["data"], **data}
        rid = rid or self.new_id(system, obj)
        if system == "psa" and not data.get("project_code"):
            data["project_code"] = f"PRJ-{int(rid):05d}" if rid.isdigit() else f"PRJ-{rid}"
        ext = item.get("ext_id", existing["ext_id"] if existing else None)
        deleted = bool(item.get("deleted", False))
        return self.store.put(system, obj, rid, data, ext_id=ext, modified=item.get("modified"), deleted=deleted,
                              created=existing is None)  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MdmSandbox/1.0"
    sandbox: Sandbox  # set on the class by make_server

    def log_message(self, format, *args):  # noqa: A002  (quiet by default)
        if self.server.verbose:  # type: ignore[attr-defined]
            super().log_message(format, *args)

    # --- plumbing -----------------------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self):  # noqa: N802
        self._dispatch("PATCH")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def _body_raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, raw: bytes):
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise Reply(400, [{"errorCode": "JSON_PARSER_ERROR", "message": "body is not JSON"}]) from None

    def _send(self, status: int, body=None, headers: dict | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        raw = self._body_raw()
        system = path.strip("/").split("/", 1)[0]
        sb = self.sandbox
        try:
            if system == "_admin":
                return self._admin(method, path, query, raw)
            if system not in SYSTEMS:
                raise Reply(404, {"error": f"no such system: {system}"})
            sb.faults.count(system)
            if sb.faults.get(system, "down"):
                raise Reply(503, {"error": f"{system} is down for maintenance"})
            if sb.faults.take(system, "fail_next"):
                status = sb.faults.get(system, "fail_status", 500)
                raise Reply(status, {"error": "injected failure"})
            if sb.faults.take(system, "rate_limit_next"):
                raise Reply(429, {"error": "rate limited"},
                            {"Retry-After": str(sb.faults.get(system, "retry_after", 1))})  # fmt: skip
            slow = sb.faults.get(system, "slow_ms", 0)
            if slow:
                time.sleep(slow / 1000)
            handler = getattr(self, f"_{system}")
            status, body, headers, wrote = handler(method, path[len(system) + 1 :], query, raw)
            if wrote and sb.faults.take(system, "drop_after_write_next"):
                raise _Drop()
            self._send(status, body, headers)
        except Reply as r:
            self._send(r.status, r.body, r.headers)
        except _Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (QueryError, ValueError, KeyError) as exc:
            self._send(400, [{"errorCode": "MALFORMED_QUERY", "message": str(exc)}])

    # --- admin --------------------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, query: dict, raw: bytes) -> None:
        sb, store = self.sandbox, self.sandbox.store
        route = path[len("/_admin/") :]
        data = self._json(raw)
        if route == "health":
            return self._send(200, {"ok": True})
        if route == "reset" and method == "POST":
            store.reset()
            sb.faults = Faults()
            return self._send(200, {"ok": True})
        if route == "faults" and method == "POST":
            system = data.pop("system", "")
            return self._send(200, sb.faults.set(system, data))
        if route == "faults" and method == "GET":
            return self._send(200, {"faults": sb.faults.state, "calls": sb.faults.calls})
        if route == "put" and method == "POST":
            return self._send(200, sb.admin_put(data))
        if route == "put_many" and method == "POST":
            return self._send(200, [sb.admin_put(item) for item in data["items"]])
        if route == "duplicate" and method == "POST":
            rows = store.by_ext(data["system"], data["object"], data["ext_id"])
            if not rows:
                raise Reply(404, {"error": "no record with that external id"})
            src = rows[0]
            rid = sb.new_id(data["system"], data["object"])
            return self._send(200, store.put(src["system"], src["object"], rid, src["data"], ext_id=src["ext_id"],
                                             created=True, log=False))  # fmt: skip
        if route == "records":
            return self._send(200, store.all(query["system"], query["object"]))
        if route == "writes":
            return self._send(200, store.writes(query.get("system"), query.get("object")))
        if route == "hooks" and method == "POST":
            store.hook_secret_set(data["name"], data["secret"])
            return self._send(200, {"ok": True})
        if route == "hooks":
            return self._send(200, store.hooks(query["name"]))
        raise Reply(404, {"error": f"no admin route {route}"})

    # --- CRM: Salesforce REST style -----------------------------------------------------------------------
    def _crm_shape(self, rec: dict, fields: list[str] | None, *, all_rows: bool) -> dict:
        obj = rec["object"]
        out = {"attributes": {"type": obj, "url": f"{SF_PREFIX}/sobjects/{obj}/{rec['id']}"}, "Id": rec["id"]}
        full = {**rec["data"], "LastModifiedDate": _sf_ts(rec["modified"]), "IsDeleted": rec["deleted"]}
        if rec["ext_id"] is not None:
            full[CRM_EXT_FIELD] = rec["ext_id"]
        if fields is None:
            out.update(full)
        else:
            lowered = {k.lower(): k for k in full}
            for f in fields:
                if f.lower() == "id":
                    continue
                key = lowered.get(f.lower())
                out[key or f] = full.get(key) if key else None
        return out

    def _crm_query(self, soql: str, *, all_rows: bool, batch: int) -> dict:
        q = parse_select(soql)
        obj = q["object"]
        if obj not in CRM_OBJECTS:
            raise Reply(400, [{"errorCode": "INVALID_TYPE", "message": f"sObject type '{obj}' is not supported."}])
        fields = None if any(f.upper() == "FIELDS(ALL)" for f in q["fields"]) else q["fields"]
        rows = []
        for rec in self.sandbox.store.all("crm", obj):
            if rec["deleted"] and not all_rows:
                continue
            view = {**rec["data"], "Id": rec["id"], "LastModifiedDate": _sf_ts(rec["modified"]),
                    "IsDeleted": rec["deleted"], CRM_EXT_FIELD: rec["ext_id"]}  # fmt: skip
            if q["where"](view):
                rows.append(rec)
        order = [o.lower() for o in q["order"]] or ["id"]

        def sort_key(rec):
            key = []
            for o in order:
                if o == "lastmodifieddate":
                    key.append(rec["modified"])
                elif o == "id":
                    key.append(rec["id"])
                else:
                    key.append(str(rec["data"].get(o, "")))
            return key

        rows.sort(key=sort_key)
        if q["limit"] is not None:
            rows = rows[: q["limit"]]
        shaped = [self._crm_shape(r, fields, all_rows=all_rows) for r in rows]
        return self._crm_page(shaped, 0, batch)

    def _crm_page(self, rows: list[dict], offset: int, batch: int, locator: str | None = None) -> dict:
        page = rows[offset : offset + batch]
        done = offset + batch >= len(rows)
        body = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            locator = locator or "01g" + uuid.uuid4().hex[:15]
            with self.sandbox.locator_lock:
                self.sandbox.locators[locator] = {"rows": rows, "batch": batch}
            body["nextRecordsUrl"] = f"{SF_PREFIX}/query/{locator}-{offset + batch}"
        return body

    def _crm(self, method: str, path: str, query: dict, raw: bytes):
        sb, store = self.sandbox, self.sandbox.store
        if not path.startswith(SF_PREFIX):
            raise Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        rest = path[len(SF_PREFIX) :]
        opts = self.headers.get("Sforce-Query-Options", "")
        m = re.search(r"batchSize=(\d+)", opts)
        batch = int(m.group(1)) if m else 2000
        if method == "GET" and rest in ("/query", "/query/", "/queryAll", "/queryAll/"):
            if "q" not in query:
                raise Reply(400, [{"errorCode": "MALFORMED_QUERY", "message": "q is required"}])
            return 200, self._crm_query(query["q"], all_rows=rest.startswith("/queryAll"), batch=batch), None, False
        m = re.fullmatch(r"/query(?:All)?/(01g\w+)-(\d+)", rest)
        if method == "GET" and m:
            if sb.faults.take("crm", "locator_expire_next"):
                raise Reply(400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
            with sb.locator_lock:
                loc = sb.locators.get(m.group(1))
            if loc is None:
                raise Reply(400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
            return 200, self._crm_page(loc["rows"], int(m.group(2)), loc["batch"], m.group(1)), None, False
        m = re.fullmatch(r"/composite/sobjects/(\w+)/(\w+)", rest)
        if method == "PATCH" and m:
            return self._crm_composite(m.group(1), m.group(2), self._json(raw))
        m = re.fullmatch(r"/sobjects/(\w+)/(\w+)/([^/]+)", rest)
        if method == "PATCH" and m:
            obj, field, value = m.group(1), m.group(2), unquote(m.group(3))
            self._crm_object(obj)
            body = self._json(raw)
            if field == "Id":
                rec = store.get("crm", obj, value)
                if rec is None:
                    raise Reply(404, [{"errorCode": "NOT_FOUND", "message": "Provided external ID field does not exist or is not accessible"}])  # fmt: skip
                store.put("crm", obj, value, {**rec["data"], **body}, ext_id=rec["ext_id"])
                return 204, None, None, True
            status, result = self._crm_upsert(obj, field, value, body)
            return status, result, None, status in (200, 201)
        m = re.fullmatch(r"/sobjects/(\w+)", rest)
        if method == "POST" and m:
            obj = m.group(1)
            self._crm_object(obj)
            body = self._json(raw)
            ext = body.pop(CRM_EXT_FIELD, None)
            rid = sb.new_id("crm", obj)
            store.put("crm", obj, rid, body, ext_id=ext, created=True)
            return 201, {"id": rid, "success": True, "errors": []}, None, True
        m = re.fullmatch(r"/sobjects/(\w+)/(\w+)", rest)
        if m and method in ("GET", "DELETE"):
            obj, rid = m.group(1), m.group(2)
            rec = store.get("crm", obj, rid)
            if rec is None or (rec["deleted"] and method == "DELETE"):
                raise Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            if method == "GET":
                return 200, self._crm_shape(rec, None, all_rows=True), None, False
            store.put("crm", obj, rid, rec["data"], ext_id=rec["ext_id"], deleted=True)
            return 204, None, None, True
        raise Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    @staticmethod
    def _crm_object(obj: str) -> None:
        if obj not in CRM_OBJECTS:
            raise Reply(404, [{"errorCode": "NOT_FOUND", "message": f"The requested resource does not exist: {obj}"}])

    def _crm_upsert(self, obj: str, field: str, value: str, body: dict) -> tuple[int, object]:
        store = self.sandbox.store
        if field != CRM_EXT_FIELD:
            raise Reply(400, [{"errorCode": "INVALID_FIELD", "message": f"{field} is not an external id field",
                               "fields": [field]}])  # fmt: skip
        body = {k: v for k, v in body.items() if k not in ("attributes", "Id", CRM_EXT_FIELD)}
        matches = store.by_ext("crm", obj, value)
        if len(matches) > 1:
            return 300, [f"{SF_PREFIX}/sobjects/{obj}/{r['id']}" for r in matches]
        if matches:
            rec = matches[0]
            store.put("crm", obj, rec["id"], {**rec["data"], **body}, ext_id=value)
            return 200, {"id": rec["id"], "success": True, "errors": [], "created": False}
        rid = self.sandbox.new_id("crm", obj)
        store.put("crm", obj, rid, body, ext_id=value, created=True)
        return 201, {"id": rid, "success": True, "errors": [], "created": True}

    def _crm_composite(self, obj: str, field: str, body: dict):
        self._crm_object(obj)
        records = body.get("records")
        if not isinstance(records, list) or not records:
            raise Reply(400, [{"errorCode": "INVALID_FIELD", "message": "records is required"}])
        if len(records) > 200:
            raise Reply(400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": "record limit reached: 200"}])
        all_or_none = bool(body.get("allOrNone"))
        planned, failed = [], False
        for rec in records:
            value = rec.get(field)
            code = self.sandbox.faults.item_fail("crm", str(value)) if value else "REQUIRED_FIELD_MISSING"
            if code is None and len(self.sandbox.store.by_ext("crm", obj, str(value))) > 1:
                code = "DUPLICATE_EXTERNAL_ID"
            failed = failed or code is not None
            planned.append((rec, value, code))
        results, wrote = [], False
        for rec, value, code in planned:
            if code is None and all_or_none and failed:
                code = "ALL_OR_NONE_OPERATION_ROLLED_BACK"
            if code is not None:
                results.append({"success": False, "errors": [{"statusCode": code, "message": f"{code} on {value}",
                                                              "fields": [field]}]})  # fmt: skip
                continue
            _, result = self._crm_upsert(obj, field, str(value), rec)
            wrote = True
            results.append(result)
        return 200, results, None, wrote

    # --- ERP: NetSuite REST style -------------------------------------------------------------------------
    def _erp_item(self, rec: dict) -> dict:
        return {"links": [], "id": rec["id"], "externalid": rec["ext_id"], "lastmodifieddate": rec["modified"],
                "isinactive": "T" if rec["deleted"] else "F",
                **{k.lower(): v for k, v in rec["data"].items()}}  # fmt: skip

    def _erp(self, method: str, path: str, query: dict, raw: bytes):
        sb, store = self.sandbox, self.sandbox.store
        if method == "POST" and path == "/services/rest/query/v1/suiteql":
            body = self._json(raw)
            q = parse_select(body.get("q", ""))
            obj = q["object"].lower()
            if obj not in ERP_TYPES:
                raise Reply(400, {"o:errorDetails": [{"detail": f"Unknown table {obj}", "o:errorCode": "INVALID_SEARCH"}]})  # fmt: skip
            limit = min(int(query.get("limit", 1000)), 1000)
            offset = int(query.get("offset", 0))
            items = [self._erp_item(r) for r in store.all("erp", obj)]
            items = [i for i in items if q["where"](i)]
            order = [o.lower() for o in q["order"]] or ["id"]
            items.sort(key=lambda i: [str(i.get(o, "")) for o in order])
            page = items[offset : offset + limit]
            has_more = offset + limit < len(items)
            links = [{"rel": "self", "href": f"{path}?limit={limit}&offset={offset}"}]
            if has_more:
                links.append({"rel": "next", "href": f"{path}?limit={limit}&offset={offset + limit}"})
            return 200, {"links": links, "count": len(page), "hasMore": has_more, "items": page, "offset": offset,
                         "totalResults": len(items)}, None, False  # fmt: skip
        m = re.fullmatch(r"/services/rest/record/v1/(\w+)/eid:([^/]+)", path)
        if method == "PUT" and m:
            obj, ext = m.group(1).lower(), unquote(m.group(2))
            if obj not in ERP_TYPES:
                raise Reply(404, {"o:errorDetails": [{"detail": f"Record type {obj} does not exist.", "o:errorCode": "NONEXISTENT_ID"}]})  # fmt: skip
            body = self._json(raw)
            body.pop("externalId", None)
            matches = store.by_ext("erp", obj, ext)
            if len(matches) > 1:
                raise Reply(400, {"o:errorDetails": [{"detail": f"More than one {obj} has external id {ext}.",
                                                      "o:errorCode": "DUP_RCRD"}]})  # fmt: skip
            if matches:
                rec = matches[0]
                store.put("erp", obj, rec["id"], {**rec["data"], **body}, ext_id=ext)
                rid = rec["id"]
            else:
                rid = sb.new_id("erp", obj)
                store.put("erp", obj, rid, body, ext_id=ext, created=True)
            host = self.headers.get("Host", "localhost")
            return 204, None, {"Location": f"http://{host}/erp/services/rest/record/v1/{obj}/{rid}"}, True
        m = re.fullmatch(r"/services/rest/record/v1/(\w+)/([^/:]+)", path)
        if method == "PATCH" and m:  # update by internal id (an externalId in the body sets it)
            obj, rid = m.group(1).lower(), m.group(2)
            rec = store.get("erp", obj, rid) if obj in ERP_TYPES else None
            if rec is None:
                raise Reply(404, {"o:errorDetails": [{"detail": "not found", "o:errorCode": "NONEXISTENT_ID"}]})
            body = self._json(raw)
            ext = body.pop("externalId", None) or rec["ext_id"]
            store.put("erp", obj, rid, {**rec["data"], **body}, ext_id=ext)
            return 204, None, None, True
        if method == "GET" and m:
            rec = store.get("erp", m.group(1).lower(), m.group(2))
            if rec is None:
                raise Reply(404, {"o:errorDetails": [{"detail": "not found", "o:errorCode": "NONEXISTENT_ID"}]})
            return 200, self._erp_item(rec), None, False
        raise Reply(404, {"o:errorDetails": [{"detail": "no such route", "o:errorCode": "INVALID_URL"}]})

    # --- PSA: Kantata style -------------------------------------------------------------------------------
    def _psa_item(self, rec: dict) -> dict:
        return {"id": rec["id"], **rec["data"], "external_id": rec["ext_id"], "archived": rec["deleted"],
                "updated_at": rec["modified"]}  # fmt: skip

    def _psa(self, method: str, path: str, query: dict, raw: bytes):
        sb, store = self.sandbox, self.sandbox.store
        if path == "/api/v1/workspaces.json" and method == "GET":
            per_page = min(int(query.get("per_page", 20)), 200)
            page_no = max(1, int(query.get("page", 1)))
            rows = store.all("psa", "workspaces")
            if query.get("include_archived", "false").lower() != "true":
                rows = [r for r in rows if not r["deleted"]]
            if query.get("updated_after"):
                after = parse_datetime(query["updated_after"])
                rows = [r for r in rows if parse_datetime(r["modified"]) > after]
            total = len(rows)
            page = rows[(page_no - 1) * per_page : page_no * per_page]
            items = {r["id"]: self._psa_item(r) for r in page}
            return 200, {
                "count": total,
                "results": [{"key": "workspaces", "id": r["id"]} for r in page],
                "workspaces": items,
                "meta": {"count": total, "page_count": max(1, -(-total // per_page)), "page_number": page_no,
                         "page_size": per_page},
            }, None, False  # fmt: skip
        if path == "/api/v1/workspaces.json" and method == "POST":
            body = self._json(raw).get("workspace")
            if not isinstance(body, dict):
                raise Reply(422, {"errors": [{"type": "validation", "field": "workspace", "message": "is missing"}]})
            ext = body.pop("external_id", None)
            matches = store.by_ext("psa", "workspaces", ext) if ext else []
            if not matches and not body.get("title"):  # a new workspace needs a title; an update may leave it
                raise Reply(422, {"errors": [{"type": "validation", "field": "title", "message": "can't be blank"}]})
            if len(matches) > 1:
                raise Reply(422, {"errors": [{"type": "validation", "field": "external_id",
                                              "message": "matches more than one workspace"}]})  # fmt: skip
            if matches:
                rec = matches[0]
                data = {**rec["data"], **{k: v for k, v in body.items() if k != "project_code"}}
                rec = store.put("psa", "workspaces", rec["id"], data, ext_id=ext)
                status = 200
            else:
                rid = sb.new_id("psa", "workspaces")
                body.setdefault("project_code", f"PRJ-{int(rid):05d}")
                rec = store.put("psa", "workspaces", rid, body, ext_id=ext, created=True)
                status = 201
            item = self._psa_item(rec)
            return status, {"count": 1, "results": [{"key": "workspaces", "id": rec["id"]}],
                            "workspaces": {rec["id"]: item}}, None, True  # fmt: skip
        raise Reply(404, {"errors": [{"type": "not_found", "message": "route not found"}]})

    # --- HR: Workday custom report style ------------------------------------------------------------------
    def _hr(self, method: str, path: str, query: dict, raw: bytes):
        if method == "GET" and re.fullmatch(r"/ccx/service/customreport2/\w+/Workers", path):
            since = parse_datetime(query["Updated_Since"]) if query.get("Updated_Since") else None
            entries = []
            for rec in self.sandbox.store.all("hr", "workers"):
                if since is not None and parse_datetime(rec["modified"]) < since:
                    continue
                entries.append({"Worker_ID": rec["id"], **rec["data"], "Last_Updated": rec["modified"],
                                "Rescinded": rec["deleted"]})  # fmt: skip
            return 200, {"Report_Entry": entries}, None, False
        raise Reply(404, {"error": "report not found"})

    # --- webhook receiver (plays a downstream subscriber) ---------------------------------------------------
    def _hooks(self, method: str, path: str, query: dict, raw: bytes):
        name = path.strip("/")
        if method != "POST" or not name:
            raise Reply(404, {"error": "POST /hooks/<name>"})
        secret = self.sandbox.store.hook_secret(name)
        valid = True
        if secret is not None:
            msg_id = self.headers.get("webhook-id", "")
            ts = self.headers.get("webhook-timestamp", "")
            expected = b64encode(hmac.new(secret.encode(), f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest())
            given = [s.split(",", 1)[-1] for s in self.headers.get("webhook-signature", "").split()]
            valid = any(hmac.compare_digest(expected.decode(), g) for g in given)
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("webhook-")}
        self.sandbox.store.hook_add(name, headers, raw.decode() or "null", valid)
        if not valid:
            raise Reply(401, {"error": "bad signature"})
        return 200, {"ok": True}, None, True


class SandboxStartError(Exception):
    """The sandbox cannot start: its port or its store folder cannot be used (the message says which)."""


def port_number(value: str) -> int:
    """An argparse type: a TCP port from 1 to 65535."""
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number: give one from 1 to 65535, e.g. 8765")
    return port


def make_server(port: int, store_dir: Path, *, host: str = "127.0.0.1", verbose: bool = False) -> ThreadingHTTPServer:
    """Listen on host:port (0: any free port) with a store in `store_dir` (created if missing). Raises
    SandboxStartError, naming the port or the folder, when either cannot be used; then nothing is created."""
    if not 0 <= port <= 65535:
        raise SandboxStartError(f"{port} is not a port number: give one from 1 to 65535, e.g. 8765")
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            other = port + 1 if port < 65535 else port - 1
            raise SandboxStartError(f"port {port} on {host} is already in use (is a sandbox already running there?); "
                                    f"choose another with --port, e.g. --port {other}") from exc  # fmt: skip
        raise SandboxStartError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
    try:
        store = Store(store_dir)
    except (OSError, sqlite3.Error) as exc:
        server.server_close()
        files = [p for p in (store_dir, *store_dir.parents) if p.exists() and not p.is_dir()]
        if files:
            why = f"{files[0]} is a file, not a folder"
        elif isinstance(exc, sqlite3.Error):  # no strerror: the store's database file is not one (or is damaged)
            why = f"its database file cannot be used: {exc}; move the folder away or pass another --store"
        else:
            why = exc.strerror or exc
        raise SandboxStartError(f"cannot use {store_dir} as the sandbox's store folder ({why}); pass --store with a "
                                "folder it may create and write to") from exc  # fmt: skip
    server.RequestHandlerClass = type("BoundHandler", (Handler,), {"sandbox": Sandbox(store)})
    server.daemon_threads = True
    server.verbose = verbose  # type: ignore[attr-defined]
    return server


def serve(server: ThreadingHTTPServer, *, store: str) -> None:
    """Serve until interrupted (Ctrl-C), then close the server."""
    host, port = server.server_address[:2]
    print(f"sandbox systems listening on http://{host}:{port} (store {store})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox", description=__doc__)
    parser.add_argument("--port", type=port_number, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", default="var/sandbox", help="folder for the sandbox's own store")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.port, Path(args.store), host=args.host, verbose=args.verbose)
    except SandboxStartError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    serve(server, store=args.store)
