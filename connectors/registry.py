"""Which connector class serves which kind of connection."""

from __future__ import annotations

from .base import Connector


def connector_class(kind: str) -> type[Connector]:
    from .crm.connector import CrmConnector
    from .erp.connector import ErpConnector
    from .filedrop.connector import FileDropConnector
    from .hr.connector import HrConnector
    from .psa.connector import PsaConnector
    from .webhooks.connector import WebhookConnector

    classes = {c.kind: c for c in (CrmConnector, ErpConnector, PsaConnector, HrConnector, FileDropConnector,
                                   WebhookConnector)}  # fmt: skip
    try:
        return classes[kind]
    except KeyError:
        raise KeyError(f"no connector for kind {kind!r}; expected one of {', '.join(sorted(classes))}") from None


def connector_for(connection) -> Connector:
    cls = connector_class(connection.kind)
    return cls(system=connection.system_id, base_url=connection.base_url, secret=connection.secret,
               options=connection.options)  # fmt: skip
