import pytest

from canonical.audit import Channel, audit_context


@pytest.fixture
def audit():
    """Run the test body inside an audit context, as every interface does."""
    with audit_context(actor="pytest", channel=Channel.JOB, reason="test") as ctx:
        yield ctx
