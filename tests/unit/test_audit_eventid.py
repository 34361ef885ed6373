"""Event IDs that carry their row's seq: UUID v4 in form, invertible only with the key."""

from __future__ import annotations

import uuid

from searchtrail.audit.eventid import EventIdCodec


def test_ids_are_uuid4_and_give_their_seq_back() -> None:
    codec = EventIdCodec(b"k" * 32)
    for seq in (1, 2, 255, 2**32 + 7, 2**63 - 1, 2**64 - 1):
        event_id = codec.encode(seq)
        parsed = uuid.UUID(event_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == event_id
        assert codec.decode(event_id) == seq
        assert codec.decode(event_id.upper()) == seq  # UUIDs compare case-insensitively


def test_ids_of_one_seq_differ_and_ids_of_successive_seqs_look_unrelated() -> None:
    codec = EventIdCodec(b"k" * 32)
    again = {codec.encode(42) for _ in range(200)}
    assert len(again) == 200 and {codec.decode(i) for i in again} == {42}
    successive = [codec.encode(seq) for seq in range(1, 2001)]
    assert len(set(successive)) == 2000
    # no shared prefix: an index of them would not be in seq order
    assert sorted(successive) != successive
    assert len({i[:4] for i in successive}) > 1000


def test_without_the_key_an_id_names_no_seq() -> None:
    event_id = EventIdCodec(b"k" * 32).encode(1234)
    assert EventIdCodec(b"j" * 32).decode(event_id) != 1234


def test_strings_that_are_not_our_ids_decode_to_nothing() -> None:
    codec = EventIdCodec(b"k" * 32)
    good = codec.encode(5)
    v1 = str(uuid.uuid1())
    not_rfc4122 = good[:19] + "c" + good[20:]  # variant bits 11
    for text in ("", "x" * 36, good[:-1], good + "0", good.replace("-", ""), v1, not_rfc4122,
                 good[:8] + "+" + good[9:], "g" + good[1:]):
        assert codec.decode(text) is None, text
