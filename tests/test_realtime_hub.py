"""The hub on its own: a message's event brings its frame, so the database is read only to
fill a gap in a group's seq or for a frame the event could not carry.

The store is a stand-in that knows every message's frame and records what it was asked to
read; the sockets record what they were given. Events go through `Hub.post`, as the
sources give them.
"""

from __future__ import annotations

import asyncio

from im_api.realtime import store
from im_api.realtime.hub import Hub
from models.events import Event

GROUP = 7


def frame(seq: int) -> str:
    return f'{{"type":"message.created","message":{{"seq":{seq}}}}}'


class RecordingStore:
    """Every message of GROUP, 1 to 20, readable; each read recorded as its spans."""

    def __init__(self):
        self.reads: list[dict] = []

    async def run(self, function, *args):
        assert function is store.batch_frames
        spans = args[0]
        self.reads.append(dict(spans))
        found = {
            group_id: [(seq, frame(seq)) for seq in range(low + 1, min(high, 20) + 1)]
            for group_id, (low, high) in spans.items()
        }
        return store.Batch(messages=found)


class RecordingSocket:
    def __init__(self, user_id: int):
        self.user_id = user_id
        self.session_id = user_id
        self.closing = None
        self.hub = None
        self.got: list[str] = []

    def loaded(self, groups) -> None:
        pass

    def deliver(self, event, text, committed_at=None) -> None:
        if event.kind == "message.created":
            self.got.append(text)


def message(seq: int, *, with_frame: bool = True) -> Event:
    return Event(
        "message.created",
        group_id=GROUP,
        seq=seq,
        message_id=100 + seq,
        frame=frame(seq) if with_frame else None,
    )


def deliver(*batches: list[Event]) -> tuple[RecordingStore, list[RecordingSocket]]:
    """Post each batch of events at once, letting the hub handle it before the next."""
    records = RecordingStore()
    sockets = [RecordingSocket(1), RecordingSocket(2)]

    async def run():
        hub = Hub(records)
        for socket in sockets:
            hub.add(socket)
            hub.loaded(socket, {GROUP})
        hub.start()
        try:
            for batch in batches:
                for event in batch:
                    hub.post(event)
                for _ in range(20):
                    await asyncio.sleep(0)
        finally:
            await hub.stop()

    asyncio.run(run())
    return records, sockets


def test_messages_that_follow_on_one_another_go_out_with_their_own_frames_unread():
    records, sockets = deliver([message(1)], [message(2), message(3)], [message(4)])

    assert records.reads == []
    for socket in sockets:
        assert socket.got == [frame(1), frame(2), frame(3), frame(4)]


def test_a_gap_in_the_seq_is_filled_from_the_database_in_order_and_a_late_event_adds_nothing():
    # 3 and 4 committed before 2's event came (SQLite's threads call back in any order).
    records, sockets = deliver([message(1)], [message(3)], [message(4)], [message(2)])

    assert records.reads == [{GROUP: (1, 3)}]
    for socket in sockets:
        assert socket.got == [frame(1), frame(2), frame(3), frame(4)]


def test_a_message_whose_event_came_without_its_frame_is_read():
    records, sockets = deliver([message(1)], [message(2, with_frame=False)], [message(3)])

    assert records.reads == [{GROUP: (1, 2)}]
    for socket in sockets:
        assert socket.got == [frame(1), frame(2), frame(3)]


def test_within_one_batch_a_gap_reads_the_group_once():
    records, sockets = deliver([message(1)], [message(2), message(4), message(3)])

    assert records.reads == [{GROUP: (1, 4)}]
    for socket in sockets:
        assert socket.got == [frame(1), frame(2), frame(3), frame(4)]
