"""A queued output's bounded queue and its overflow policy (hub/queue.py)."""

from __future__ import annotations

from aiortmp.hub.packet import Packet
from aiortmp.hub.packet import PacketKind as K
from aiortmp.hub.queue import OutputQueue

BIG = bytes(12 * 1024)


def packet(kind: K, ts: int, payload: bytes = BIG) -> Packet:
    return Packet(8 if kind is K.AUDIO else 9, ts, payload, kind)


def queued(queue: OutputQueue) -> list[tuple[K, int]]:
    return [(p.kind, p.timestamp_ms) for p in queue.pop_all()]


def test_starts_at_a_keyframe() -> None:
    queue = OutputQueue(1 << 20)
    assert queue.push([packet(K.VIDEO, 0), packet(K.AUDIO, 1, b"a"), packet(K.KEYFRAME, 2)])
    assert queued(queue) == [(K.AUDIO, 1), (K.KEYFRAME, 2)]
    assert queue.dropped == 1


def test_past_the_soft_limit_inter_frames_go_first_then_the_output_stops() -> None:
    queue = OutputQueue(64 * 1024, wait_keyframe=False)
    # 36 KiB queued: past half of 64 KiB, non-key video is dropped (and the video up to the
    # next keyframe); audio, configuration and metadata still go.
    assert queue.push([packet(K.KEYFRAME, 0), packet(K.VIDEO, 1), packet(K.VIDEO, 2)])
    assert queue.push([packet(K.VIDEO, 3), packet(K.AUDIO, 4, b"a" * 100)])
    assert queue.push([packet(K.VIDEO_CONFIG, 5, b"h" * 50), packet(K.DATA, 6, b"m")])
    assert queue.dropped == 1
    assert queue.gate.closed
    # Keyframes are still taken (a keyframe alone is decodable) — until the hard limit.
    assert queue.push([packet(K.KEYFRAME, 7)])
    assert not queue.push([packet(K.KEYFRAME, 8), packet(K.KEYFRAME, 9)])
    assert queue.overflowed and len(queue) == 0 and queue.queued_bytes == 0
    assert not queue.push([packet(K.AUDIO, 10, b"a")])  # stopped: takes nothing more


def test_drained_queue_resumes_video_at_a_keyframe() -> None:
    queue = OutputQueue(64 * 1024, wait_keyframe=False)
    queue.push([packet(K.KEYFRAME, 0), packet(K.VIDEO, 1), packet(K.VIDEO, 2), packet(K.VIDEO, 3)])
    assert [t for _, t in queued(queue)] == [0, 1, 2]  # 3 went over the soft limit
    queue.push([packet(K.VIDEO, 4), packet(K.KEYFRAME, 5), packet(K.VIDEO, 6)])
    assert queued(queue) == [(K.KEYFRAME, 5), (K.VIDEO, 6)]
