"""The random access index of a fragmented MP4 file: ``mfra`` (ISO/IEC 14496-12 §8.8.9-§8.8.11).

A recorder writes fragments as the stream goes; when it closes a file cleanly it can append
an ``mfra`` box: one ``tfra`` per track listing, for each fragment, the time and file
position of a sync sample, and an ``mfro`` at the very end giving the ``mfra`` size, so a
player finds the index by reading the last 16 bytes. ("The Movie Fragment Random Access
Box provides a table which may assist readers in finding sync samples in a file using
movie fragments.")

Sans-I/O: :func:`sync_points` reads the ``moof`` a muxer just produced and
:func:`mfra_box` returns bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from aiortmp.media.errors import MP4Error

__all__ = ["RandomAccessPoint", "mfra_box", "sync_points"]

_HEADER = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

# tfhd flags (§8.8.7.1) and trun flags (§8.8.8.1).
_TFHD_FIELDS = ((0x000001, 8), (0x000002, 4), (0x000008, 4), (0x000010, 4))
_TFHD_DEFAULT_FLAGS = 0x000020
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
_NON_SYNC = 0x0001_0000


@dataclass(frozen=True, kw_only=True, slots=True)
class RandomAccessPoint:
    """One ``tfra`` entry (§8.8.10): a sync sample and where to find it.

    Attributes:
        track_id: the track.
        time: the sample's presentation time (decode time plus composition offset), in
            the track's timescale: "the presentation time of the sync sample in units
            defined in the Media Header Box of the associated track".
        moof_offset: file position of the ``moof`` holding it, bytes.
        traf_number / trun_number / sample_number: its ``traf`` in the ``moof``, ``trun``
            in the ``traf`` and sample in the ``trun``, each from 1.
    """

    track_id: int
    time: int
    moof_offset: int
    traf_number: int
    trun_number: int
    sample_number: int


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out = []
    offset = start
    while offset + 8 <= end:
        size, kind = _HEADER.unpack_from(data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise MP4Error("truncated largesize")
            (size,) = _U64.unpack_from(data, offset + 8)
            header = 16
        if size < header or offset + size > end:
            raise MP4Error(f"box {kind!r} does not fit")
        out.append((bytes(kind), offset + header, offset + size))
        offset += size
    return out


def sync_points(fragment: bytes, moof_offset: int) -> list[RandomAccessPoint]:
    """The first sync sample of each track fragment of a fragment.

    Args:
        fragment: the fragment, starting with its ``moof`` (an ``mdat`` may follow).
        moof_offset: where the ``moof`` is written in the file, bytes.

    Returns:
        One point per ``traf`` that has a sync sample, in ``traf`` order.

    Raises:
        MP4Error: ``fragment`` does not start with a well-formed ``moof``.
    """
    top = _children(fragment, 0, len(fragment))
    if not top or top[0][0] != b"moof":
        raise MP4Error("a fragment starts with moof")
    _, moof_start, moof_end = top[0]
    points = []
    traf_number = 0
    for kind, start, end in _children(fragment, moof_start, moof_end):
        if kind != b"traf":
            continue
        traf_number += 1
        track_id = None
        default_flags = 0
        time = 0
        trun_number = 0
        found: tuple[int, int] | None = None  # (trun number, sample number)
        for child, payload, child_end in _children(fragment, start, end):
            if child == b"tfhd":
                if payload + 8 > child_end:
                    raise MP4Error("tfhd is truncated")
                flags = _U32.unpack_from(fragment, payload)[0] & 0xFFFFFF
                track_id = _U32.unpack_from(fragment, payload + 4)[0]
                pos = payload + 8
                for flag, size in _TFHD_FIELDS:
                    if flags & flag:
                        pos += size
                if flags & _TFHD_DEFAULT_FLAGS:
                    if pos + 4 > child_end:
                        raise MP4Error("tfhd is truncated")
                    default_flags = _U32.unpack_from(fragment, pos)[0]
            elif child == b"tfdt":
                version = fragment[payload]
                unpack = _U64 if version == 1 else _U32
                if payload + 4 + unpack.size > child_end:
                    raise MP4Error("tfdt is truncated")
                time = unpack.unpack_from(fragment, payload + 4)[0]
            elif child == b"trun" and found is None:
                trun_number += 1
                sample, time = _first_sync(fragment, payload, child_end, default_flags, time)
                if sample is not None:
                    found = (trun_number, sample)
        if track_id is not None and found is not None:
            points.append(
                RandomAccessPoint(
                    track_id=track_id,
                    time=time,
                    moof_offset=moof_offset,
                    traf_number=traf_number,
                    trun_number=found[0],
                    sample_number=found[1],
                )
            )
    return points


def _first_sync(
    data: bytes, start: int, end: int, default_flags: int, time: int
) -> tuple[int | None, int]:
    """(number of the first sync sample from 1 or None, its presentation time, or the
    decode time after the run when it has none)."""
    if start + 8 > end:
        raise MP4Error("trun is truncated")
    word, count = struct.unpack_from(">II", data, start)
    version = word >> 24
    flags = word & 0xFFFFFF
    pos = start + 8
    if flags & _TRUN_DATA_OFFSET:
        pos += 4
    first_flags = None
    if flags & _TRUN_FIRST_FLAGS:
        first_flags = _U32.unpack_from(data, pos)[0]
        pos += 4
    fields = [f for f in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if flags & f]
    if pos + 4 * len(fields) * count > end:
        raise MP4Error("trun is truncated")
    for number in range(1, count + 1):
        duration = cto = 0
        sample_flags = default_flags
        if number == 1 and first_flags is not None:
            sample_flags = first_flags
        for field in fields:
            value = _U32.unpack_from(data, pos)[0]
            pos += 4
            if field == _TRUN_DURATION:
                duration = value
            elif field == _TRUN_FLAGS:
                sample_flags = value
            elif field == _TRUN_CTO:
                cto = value - (1 << 32) if version and value >= 1 << 31 else value
        if not sample_flags & _NON_SYNC:
            return number, max(0, time + cto)
        time += duration
    return None, time


def _width(value: int) -> int:
    """``length_size_of_*`` (§8.8.10.2): the field is ``(x + 1)`` bytes, x in 0..3."""
    return 0 if value < 1 << 8 else 1 if value < 1 << 16 else 2 if value < 1 << 24 else 3


def mfra_box(points: Sequence[RandomAccessPoint], track_ids: Sequence[int]) -> bytes:
    """The ``mfra`` box: a ``tfra`` (version 1) per track, then ``mfro`` (§8.8.9-§8.8.11).

    Args:
        points: the sync points of the file, in file order.
        track_ids: every track of the file: a track without points gets an empty
            ``tfra`` ("the absence of this box does not mean that all the samples are
            sync samples", so a track with no entry is still listed).

    Returns:
        The box, to append at the very end of the file.
    """
    tfras = []
    for track_id in track_ids:
        entries = [p for p in points if p.track_id == track_id]
        traf = _width(max((p.traf_number for p in entries), default=0))
        trun = _width(max((p.trun_number for p in entries), default=0))
        sample = _width(max((p.sample_number for p in entries), default=0))
        body = [
            struct.pack(">IIII", 0x01000000, track_id, traf << 4 | trun << 2 | sample, len(entries))
        ]
        for p in entries:
            body.append(struct.pack(">QQ", p.time, p.moof_offset))
            body.append(p.traf_number.to_bytes(traf + 1, "big"))
            body.append(p.trun_number.to_bytes(trun + 1, "big"))
            body.append(p.sample_number.to_bytes(sample + 1, "big"))
        payload = b"".join(body)
        tfras.append(_U32.pack(8 + len(payload)) + b"tfra" + payload)
    inner = b"".join(tfras)
    size = 8 + len(inner) + 16
    # mfro: FullBox version 0; "size ... includes the enclosing mfra box".
    mfro = struct.pack(">I4sII", 16, b"mfro", 0, size)
    return _U32.pack(size) + b"mfra" + inner + mfro
