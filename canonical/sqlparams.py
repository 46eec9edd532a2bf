"""Big list parameters for PostgreSQL, written out once instead of element by element.

Django's PostgreSQL backend binds parameters on the client (psycopg's `ClientCursor`), and psycopg dumps a Python
list into an array literal in Python, one element at a time: for the bulk path's reads of thousands of ids or
blocking keys a window, that was most of the client's cost of the query. Measured with `ClientCursor.mogrify` on
3,000 elements: text pairs 13.8 ms as two `text[]` against 1.0 ms as two JSON arrays, UUIDs 9.8 ms against 4.0 ms,
bigints 3.5 ms against 0.4 ms. The results are the same: only the way the values travel changes.

- `id_array(values)`: ints or UUIDs as one array literal (`'{1,2,3}'`), for `= ANY(%s::bigint[])` or
  `unnest(%s::uuid[])`. Only ints and UUID objects are written out (their text cannot hold a quote, a comma or a
  brace); anything else is returned as the list, for psycopg to dump as before.
- `text_array(values)`: strings as one JSON array, for `json_array_elements_text(%s::json)` (which keeps their
  order: `WITH ORDINALITY` numbers them as an array's `unnest` would).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

_int = int
_uuid = uuid.UUID


def id_array(values: Sequence) -> str | list:
    """`values` (all ints, or all UUIDs) as a PostgreSQL array literal; otherwise the list itself."""
    values = list(values)
    if all(type(v) is _int for v in values) or all(type(v) is _uuid for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    return values


def text_array(values: Sequence[str]) -> str:
    """`values` (strings) as a JSON array, for `json_array_elements_text(%s::json)`."""
    return json.dumps(list(values), ensure_ascii=False)
