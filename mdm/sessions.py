"""The session store: Django's database sessions, refusing a session cookie that cannot be a session key.

Python's cookie parser decodes quoted octal escapes, so a plain-ASCII header such as `sessionid="ab\\000cd…"`
reached the session table's lookup with a NUL in the key, which PostgreSQL refuses: a 500 on every URL. Django
makes session keys of lowercase ASCII letters and digits; anything else is no session (the request is anonymous).
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key):
        return super()._validate_session_key(key) and key.isascii() and key.isalnum()
