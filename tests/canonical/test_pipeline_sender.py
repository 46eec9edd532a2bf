"""The pipelined matcher's sender (canonical/services/pipeline.py `_Sender`): when the writer is gone, the matcher
stops at its next send, also when its queue of messages waiting to be written is full (it once waited forever
there, holding its database connections, after a writer killed by the OOM killer)."""

from __future__ import annotations

import multiprocessing
import threading
import time

from canonical.services import pipeline as pipeline_module


def test_a_matcher_whose_writer_is_gone_stops_at_its_next_send_even_with_a_full_queue():
    ours, theirs = multiprocessing.Pipe()
    sender = pipeline_module._Sender(ours)
    outcome: list = []

    def matcher() -> None:  # windows larger than the pipe holds: the writer is busy, so the queue fills up
        try:
            for n in range(pipeline_module._AHEAD * 4):
                sender.send(("plans", [n] * 200_000))
        except BrokenPipeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=matcher, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not sender._queue.full() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sender._queue.full()  # the matcher waits for room
    theirs.close()  # and the writer dies (killed)
    thread.join(timeout=20)
    assert not thread.is_alive(), "the matcher waits forever for room in its queue"
    assert outcome and isinstance(outcome[0], BrokenPipeError)
    closing = threading.Thread(target=sender.close, daemon=True)
    closing.start()
    closing.join(timeout=20)
    assert not closing.is_alive() and not sender._thread.is_alive()


def test_what_was_sent_is_written_in_order_before_close_returns():
    ours, theirs = multiprocessing.Pipe()
    sender = pipeline_module._Sender(ours)
    received: list = []
    reader = threading.Thread(target=lambda: received.extend(theirs.recv() for _ in range(100)), daemon=True)
    reader.start()
    for n in range(100):  # more than the queue holds: the writer's reads make room
        sender.send(("plans", n))
    sender.close()
    reader.join(timeout=20)
    assert received == [("plans", n) for n in range(100)]
