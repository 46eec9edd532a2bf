"""A small evaluator for the WHERE clauses of SOQL and SuiteQL, enough for incremental queries.

Grammar: expr := term (OR term)*; term := factor (AND factor)*; factor := '(' expr ')' | field op literal.
Literals: 'quoted text', true/false/null, numbers, and bare ISO date-times (SOQL style). Comparison of
date-times is done on their UTC instant, so `2026-01-01T00:00:00.000+0000` equals `...000Z`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op><=|>=|!=|<>|=|<|>)|(?P<paren>[()])|(?P<word>[A-Za-z0-9_.:+\-]+))"
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


class QueryError(ValueError):
    pass


def parse_datetime(text: str) -> dt.datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = re.match(r"^(.*[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-])(\d{2})(\d{2})$", text)
    if m:
        text = f"{m.group(1)}{m.group(2)}{m.group(3)}:{m.group(4)}"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"unexpected input at: {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


def _literal(kind: str, raw: str) -> Any:
    if kind == "str":
        return raw[1:-1].replace("\\'", "'")
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _DATETIME.match(raw):
        return parse_datetime(raw)
    try:
        return float(raw) if "." in raw else int(raw)
    except ValueError:
        raise QueryError(f"not a literal: {raw}") from None


class Where:
    """A parsed condition; call it with a record (dict, field names case-insensitive) to test it."""

    def __init__(self, text: str):
        self.toks = _tokens(text) if text.strip() else []
        self.i = 0
        self.tree = self._expr() if self.toks else None
        if self.i != len(self.toks):
            raise QueryError(f"unexpected {self.toks[self.i][1]!r}")

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise QueryError("unexpected end of condition")
        self.i += 1
        return tok

    def _kw(self, word: str) -> bool:
        tok = self._peek()
        if tok and tok[0] == "word" and tok[1].upper() == word:
            self.i += 1
            return True
        return False

    def _expr(self):
        node = self._term()
        while self._kw("OR"):
            node = ("or", node, self._term())
        return node

    def _term(self):
        node = self._factor()
        while self._kw("AND"):
            node = ("and", node, self._factor())
        return node

    def _factor(self):
        tok = self._take()
        if tok == ("paren", "("):
            node = self._expr()
            if self._take() != ("paren", ")"):
                raise QueryError("missing )")
            return node
        if tok[0] != "word":
            raise QueryError(f"expected a field name, got {tok[1]!r}")
        op = self._take()
        if op[0] != "op":
            raise QueryError(f"expected a comparison after {tok[1]}")
        lit = self._take()
        if lit[0] not in ("str", "word"):
            raise QueryError(f"expected a value after {tok[1]} {op[1]}")
        return ("cmp", tok[1].lower(), op[1], _literal(*lit))

    def __call__(self, record: dict) -> bool:
        if self.tree is None:
            return True
        lowered = {k.lower(): v for k, v in record.items()}
        return self._eval(self.tree, lowered)

    def _eval(self, node, rec: dict) -> bool:
        if node[0] == "or":
            return self._eval(node[1], rec) or self._eval(node[2], rec)
        if node[0] == "and":
            return self._eval(node[1], rec) and self._eval(node[2], rec)
        _, name, op, lit = node
        value = rec.get(name)
        if isinstance(lit, dt.datetime) and isinstance(value, str):
            try:
                value = parse_datetime(value)
            except ValueError:
                return False
        if op in ("=",):
            return value == lit
        if op in ("!=", "<>"):
            return value != lit
        if value is None or lit is None:
            return False
        try:
            return {"<": value < lit, "<=": value <= lit, ">": value > lit, ">=": value >= lit}[op]
        except TypeError:
            return False


_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>[\w\s,]+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def parse_select(text: str) -> dict:
    m = _SELECT.match(text)
    if not m:
        raise QueryError("expected SELECT <fields> FROM <object> [WHERE …] [ORDER BY …] [LIMIT n]")
    fields = [f.strip() for f in m.group("fields").split(",") if f.strip()]
    order = [o.strip().split()[0] for o in (m.group("order") or "").split(",") if o.strip()]
    return {
        "fields": fields,
        "object": m.group("obj"),
        "where": Where(m.group("where") or ""),
        "order": order,
        "limit": int(m.group("limit")) if m.group("limit") else None,
    }
