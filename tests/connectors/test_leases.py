"""LeaseKeeper: renews a lease from its own thread while the work runs; stops at the end of the work, or after
`max_seconds` (a worker stuck while alive then loses the lease as a dead one would)."""

import time

from connectors.services.leases import LeaseKeeper


def test_the_keeper_renews_while_the_block_runs_and_not_after():
    renewals: list[float] = []
    with LeaseKeeper(lambda: renewals.append(time.monotonic()), every=lambda: 0.01, what="a test") as keeper:
        time.sleep(1.0)
    after = len(renewals)
    assert 1 <= after <= 6, "every 0.2 s at the least (a shorter period is raised to it), not a busy loop"
    time.sleep(0.5)
    assert len(renewals) == after and not keeper._thread.is_alive()


def test_the_keeper_stops_renewing_after_max_seconds_and_says_so(caplog):
    renewals: list[float] = []
    with LeaseKeeper(lambda: renewals.append(time.monotonic()), every=lambda: 0.2, what="a stuck push",
                     max_seconds=0.5) as keeper:  # fmt: skip
        time.sleep(1.5)
        assert not keeper._thread.is_alive(), "stopped while the work still runs"
        stopped_at = len(renewals)
        time.sleep(0.5)
        assert len(renewals) == stopped_at and stopped_at <= 3
    assert any("stopped renewing the lease of a stuck push" in r.getMessage() for r in caplog.records)


def test_a_renewal_that_fails_is_tried_again_with_one_warning(caplog):
    calls: list[int] = []

    def renew():
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("the database is restarting")

    with LeaseKeeper(renew, every=lambda: 0.2, what="a flaky lease"):
        time.sleep(1.1)
    assert len(calls) >= 3, "tried again after failures"
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "flaky lease" in r.getMessage()]
    assert len(warnings) == 1
