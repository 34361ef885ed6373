"""Event IDs that carry their event's store sequence, hidden under a server key, so a
LookupEvents by EventId reads one row by its primary key instead of a lookup index.

An ID is a version 4, RFC 4122 variant UUID whose 122 free bits are 58 random bits ``r``
and ``seq XOR pad(r)``, where ``pad`` is keyed BLAKE2b. Without the key the IDs look random;
with it the sequence comes back exactly. Two events never share an ID (their sequences
differ), and an index of random UUIDs would put every insert on a random page of the store
(measured: bench/README.md "Event IDs that name their row").
"""

from __future__ import annotations

import hashlib
import os

_RANDOM_BITS = 58
_SEQ_BITS = 64
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_RANDOM_BYTES = 8  # r is drawn as 64 bits and cut to 58
_POOL_DRAWS = 1024
_HEX = frozenset("0123456789abcdef")
_DASHES = (8, 13, 18, 23)


class RandomPool:
    """Random bytes in draws of ``size``: one getrandom call per ``draws`` of them, not per
    draw (request IDs and event IDs are made on every call)."""

    def __init__(self, size: int, draws: int = _POOL_DRAWS) -> None:
        self._size = size
        self._draws = draws
        self._pool = b""
        self._offset = 0

    def take(self) -> bytes:
        if self._offset >= len(self._pool):
            self._pool = os.urandom(self._size * self._draws)
            self._offset = 0
        chunk = self._pool[self._offset:self._offset + self._size]
        self._offset += self._size
        return chunk


class EventIdCodec:
    """encode(seq) -> a new ID; decode(ID) -> the sequence it names (None: not one of ours).

    A decoded sequence is only a candidate: an ID made up by a caller decodes to some
    sequence too, so the reader checks that the stored record carries that very ID.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._randomness = RandomPool(_RANDOM_BYTES)

    def _pad(self, random_part: int) -> int:
        digest = hashlib.blake2b(random_part.to_bytes(8, "big"), key=self._key,
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def _random(self) -> int:
        return int.from_bytes(self._randomness.take(), "big") >> (64 - _RANDOM_BITS)

    def encode(self, seq: int) -> str:
        if not 0 <= seq <= _SEQ_MASK:
            raise ValueError(f"sequence out of range: {seq}")
        random_part = self._random()
        free = (random_part << _SEQ_BITS) | (seq ^ self._pad(random_part))  # 122 bits
        # 48 bits | version 4 | 12 bits | variant 10 | 62 bits
        value = ((free >> 74) << 80) | (0x4 << 76) | (((free >> 62) & 0xFFF) << 64) \
            | (0b10 << 62) | (free & ((1 << 62) - 1))
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def decode(self, event_id: str) -> int | None:
        if len(event_id) != 36 or any(event_id[i] != "-" for i in _DASHES):
            return None
        digits = event_id.replace("-", "").lower()
        if len(digits) != 32 or not _HEX.issuperset(digits):
            return None
        value = int(digits, 16)
        if (value >> 76) & 0xF != 0x4 or (value >> 62) & 0b11 != 0b10:
            return None
        free = ((value >> 80) << 74) | (((value >> 64) & 0xFFF) << 62) | (value & ((1 << 62) - 1))
        random_part, masked = free >> _SEQ_BITS, free & _SEQ_MASK
        return masked ^ self._pad(random_part)
