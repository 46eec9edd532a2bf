"""The file-drop connector: each new file is one page, ingested with a ProcessedFile row (by content hash)
in the same transaction, then moved to done/. A file dropped twice is ingested once. A bad line is an error
naming `file:line` and the good lines go on; a file with no good line is recorded too (records=0, its errors)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from connectors.base import Connector, Cursor, PullPage

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
            name = mapping.storable(path.name)[:255]
            try:
                digest = self.folder.sha256(path)
                mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
            except OSError as exc:  # unreadable for now (permissions, removed meanwhile): not recorded, tried again
                yield PullPage(domain=domain, envelopes=[], cursor=cursor,
                               errors=[mapping.storable(f"{path.name}: cannot read the file: {exc.strerror or exc}")])  # fmt: skip
                continue
            if ProcessedFile.objects.filter(system_id=self.system, domain=domain, sha256=digest).exists():
                self.folder.done(path)
                continue
            # Bad lines are errors naming file:line; a file with no readable line at all (not UTF-8 from the
            # start) is recorded all the same, with records=0 and the reason, so it is not tried again.
            envelopes, errors = mapping.rows(path, domain)
            count = len(envelopes)

            def mark(name=name, digest=digest, count=count, errors=errors):
                ProcessedFile.objects.create(system_id=self.system, domain=domain, name=name, sha256=digest,
                                             records=count, errors=errors)  # fmt: skip

            yield PullPage(domain=domain, envelopes=envelopes, errors=errors, cursor=Cursor(ts=mtime, id=name),
                           in_transaction=mark, after_commit=lambda path=path: self.folder.done(path))  # fmt: skip
