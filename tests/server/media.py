"""Synthetic FLV tag bodies (legacy H.264/AAC headers around filler data)."""

from __future__ import annotations

AVC_SEQUENCE_HEADER = b"\x17\x00\x00\x00\x00" + bytes.fromhex(
    "01640028ffe1001c67640028acd940780227e5c044000003000400000301903c60c65801000668ebe3cb22c0"
)
AAC_SEQUENCE_HEADER = b"\xaf\x00\x12\x10"


def video_frame(index: int, size: int, gop: int = 25) -> bytes:
    """Frame ``index`` of a stream with a keyframe every ``gop`` frames."""
    head = b"\x17\x01\x00\x00\x00" if index % gop == 0 else b"\x27\x01\x00\x00\x00"
    return head + index.to_bytes(4, "big") + bytes(size)


def audio_frame(size: int = 200) -> bytes:
    return b"\xaf\x01" + bytes(size)


def is_keyframe(payload: bytes) -> bool:
    return payload[:2] == b"\x17\x01"


def frame_index(payload: bytes) -> int:
    return int.from_bytes(payload[5:9], "big")
