"""The file-drop connector: each new file is one page, ingested with a ProcessedFile row (by content hash)
in the same transaction, then moved to done/. A file dropped twice is ingested once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from connectors.base import Connector, Cursor, PullPage, envelopes_parse

from . import mapping
from .client import DropFolder


class FileDropConnector(Connector):
    kind = "filedrop"
    pull_domains = ("legal_entity", "customer", "rate_card", "contract", "resource", "project")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.folder = DropFolder(self.base_url)

    def pull(self, *, domain: str, cursor: Cursor, overlap: dt.timedelta) -> Iterator[PullPage]:
        from connectors.models import ProcessedFile

        for path in self.folder.files(domain):
            digest = self.folder.sha256(path)
            if ProcessedFile.objects.filter(system_id=self.system, domain=domain, sha256=digest).exists():
                self.folder.done(path)
                continue
            payloads, warnings = mapping.rows(path, domain)
            envelopes, errors = envelopes_parse(domain, payloads)
            errors = warnings + errors
            count = len(envelopes)

            def mark(path=path, digest=digest, count=count, errors=errors):
                ProcessedFile.objects.create(system_id=self.system, domain=domain, name=path.name, sha256=digest,
                                             records=count, errors=errors)  # fmt: skip

            mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
            yield PullPage(domain=domain, envelopes=envelopes, errors=errors, cursor=Cursor(ts=mtime, id=path.name),
                           in_transaction=mark, after_commit=lambda path=path: self.folder.done(path))  # fmt: skip
