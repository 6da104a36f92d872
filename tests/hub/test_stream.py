"""The stream: batching, delivery, startup cache, sources (hub/stream.py), in memory."""

from __future__ import annotations

import pytest

from aiortmp.errors import StreamBusy
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.packet import FLV, PacketKind, rtmp_wire
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import StartAt, Stream, StreamSettings
from aiortmp.media.tags import (
    AudioFourCC,
    AudioPacketType,
    VideoFourCC,
    VideoPacketType,
    build_audio_tag,
    build_video_tag,
)

from ..server.media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame
from .fakes import FakeOutput, FakeScheduler, FakeSource

RTMP1 = rtmp_wire(1, 4096)


def make(**settings: object) -> tuple[Stream, FakeScheduler]:
    scheduler = FakeScheduler()
    stream = Stream("live", "cam", scheduler=scheduler, settings=StreamSettings(**settings))  # type: ignore[arg-type]
    return stream, scheduler


def publish_headers(stream: Stream) -> None:
    stream.ingest_metadata({"width": 320.0})
    stream.ingest(9, 0, AVC_SEQUENCE_HEADER)
    stream.ingest(8, 0, AAC_SEQUENCE_HEADER)


def test_one_serialization_per_wire_format_shared_by_every_output() -> None:
    stream, _ = make()
    a, b, flv = FakeOutput(RTMP1), FakeOutput(RTMP1), FakeOutput(FLV)
    for output in (a, b, flv):
        stream.subscribe(output)
    stream.attach(FakeSource())
    stream.ingest(9, 0, video_frame(0, 100))
    stream.ingest(8, 0, audio_frame())
    stream.commit()
    (data_a, packets), (data_b, _) = a.batches[0], b.batches[0]
    assert data_a is data_b  # the same bytes object
    assert data_a == b"".join(p.wire(RTMP1) for p in packets)
    assert flv.batches[0][0] == b"".join(p.wire(FLV) for p in packets)


def test_chunk_size_is_part_of_the_wire_format() -> None:
    stream, _ = make()
    small, large = FakeOutput(rtmp_wire(1, 128)), FakeOutput(rtmp_wire(1, 4096))
    stream.subscribe(small)
    stream.subscribe(large)
    stream.attach(FakeSource())
    stream.ingest(9, 0, video_frame(0, 1000))
    stream.commit()
    # fmt 3 continuation headers every 128 bytes vs. one chunk.
    assert len(small.data) > len(large.data)
    assert small.data != large.data


def test_queued_outputs_get_packets_not_bytes() -> None:
    stream, _ = make()
    queued = FakeOutput(None)
    stream.subscribe(queued)
    stream.attach(FakeSource())
    stream.ingest(9, 0, video_frame(0, 10))
    stream.commit()
    assert queued.batches[0][0] is None and len(queued.batches[0][1]) == 1


def test_coalescing_holds_reads_until_the_interval_or_the_size() -> None:
    stream, scheduler = make(fanout_interval_s=0.02, fanout_max_bytes=4000)
    out = FakeOutput(RTMP1)
    stream.subscribe(out)
    stream.attach(FakeSource())
    for i in range(3):
        stream.ingest(9, i * 10, video_frame(i, 100))
        stream.commit()
    assert out.batches == [] and scheduler.pending == 1
    scheduler.advance(0.02)
    assert len(out.batches) == 1 and len(out.batches[0][1]) == 3
    stream.ingest(9, 40, video_frame(3, 5000))  # over fanout_max_bytes: at once
    stream.commit()
    assert len(out.batches) == 2


def test_cache_replay_for_a_late_joiner() -> None:
    stream, _ = make()
    stream.attach(FakeSource())
    publish_headers(stream)
    for i in range(30):
        stream.ingest(9, i * 40, video_frame(i, 10, gop=25))
        stream.ingest(8, i * 40, audio_frame())
    stream.commit()
    late = FakeOutput(RTMP1)
    stream.subscribe(late)
    assert late.live == [True]
    data, packets = late.batches[0]
    assert data is None  # the startup burst: the output serializes what it keeps
    kinds = [p.kind for p in packets]
    assert kinds[:3] == [PacketKind.DATA, PacketKind.VIDEO_CONFIG, PacketKind.AUDIO_CONFIG]
    assert kinds[3] is PacketKind.KEYFRAME
    assert packets[3].timestamp_ms == 25 * 40  # the GOP starts at the last keyframe
    assert len(packets) == 3 + 5 * 2
    # StartAt.KEYFRAME: metadata and configuration only.
    recorder = FakeOutput(None)
    stream.subscribe(recorder, StartAt.KEYFRAME)
    assert [p.kind for p in recorder.packets][3:] == []


def test_joiner_while_a_batch_is_held_gets_each_packet_once() -> None:
    stream, scheduler = make(fanout_interval_s=0.02)
    stream.attach(FakeSource())
    stream.ingest(9, 0, video_frame(0, 10))
    stream.commit()  # held
    late = FakeOutput(RTMP1)
    stream.subscribe(late)
    scheduler.advance(1)
    assert [p.timestamp_ms for p in late.packets] == [0]


def test_e_rtmp_multichannel_config_and_video_metadata_are_cached_per_track() -> None:
    stream, _ = make()
    stream.attach(FakeSource())
    multichannel = build_audio_tag(
        b"\x01\x02\x00\x00\x00\x03",  # Native order, 2 channels, FL|FR
        codec=AudioFourCC.OPUS,
        packet_type=AudioPacketType.MULTICHANNEL_CONFIG,
    )
    color = build_video_tag(
        b"\x02\x00\x09colorInfo\x03\x00\x00\x09",  # AMF0 "colorInfo", {}
        codec=VideoFourCC.HEVC,
        packet_type=VideoPacketType.METADATA,
    )
    stream.ingest(8, 0, multichannel)
    stream.ingest(9, 0, color)
    stream.ingest(9, 0, video_frame(0, 10))
    stream.commit()
    late = FakeOutput(RTMP1)
    stream.subscribe(late)
    payloads = [p.payload for p in late.packets]
    assert color in payloads and multichannel in payloads
    kinds = {p.payload: p.kind for p in late.packets}
    assert (
        kinds[color] is PacketKind.VIDEO_CONFIG and kinds[multichannel] is PacketKind.AUDIO_CONFIG
    )


def test_attach_detach_tell_outputs_and_listener() -> None:
    scheduler = FakeScheduler()
    bus = EventBus()
    events: list[ServerEvent] = []
    bus.subscribe(events.append)
    registry = Registry(scheduler=scheduler, bus=bus)
    stream = registry.get_or_create("live", "cam")
    waiting = FakeOutput(RTMP1)
    stream.subscribe(waiting)
    assert waiting.live == []
    source = FakeSource(kind="pull", session_id=42, remote="rtmp://origin/live")
    stream.attach(source)
    with pytest.raises(StreamBusy):
        stream.attach(FakeSource())
    stream.detach(FakeSource())  # not the source: nothing happens
    assert stream.source is source
    stream.detach(source)
    assert waiting.live == [True, False]
    assert [(e.kind, e.session_id, e.details["source"]) for e in events] == [
        (EventKind.PUBLISH, 42, "pull"),
        (EventKind.UNPUBLISH, 42, "pull"),
    ]
    assert registry.get("live", "cam") is stream  # the waiting output holds it
    stream.unsubscribe(waiting)
    registry.release(stream)
    assert registry.get("live", "cam") is None


def test_timestamps_are_normalized_for_outputs() -> None:
    stream, _ = make()
    out = FakeOutput(FLV)
    stream.subscribe(out)
    stream.attach(FakeSource())
    start = (1 << 32) - 40
    for i in range(4):
        stream.ingest(9, (start + 20 * i) % (1 << 32), video_frame(i, 10))
    stream.commit()
    assert [p.timestamp_ms for p in out.packets] == [0, 20, 40, 60]


def test_a_successor_takes_over_without_the_players_noticing() -> None:
    bus = EventBus()
    events: list[ServerEvent] = []
    bus.subscribe(events.append)
    registry = Registry(scheduler=FakeScheduler(), bus=bus)
    stream = registry.get_or_create("live", "cam")
    player, recorder = FakeOutput(RTMP1), FakeOutput(None)
    stream.subscribe(player)
    stream.subscribe(recorder)
    old, link = FakeSource(kind="rtmp"), FakeSource(kind="link", session_id=8)
    stream.attach(old)
    publish_headers(stream)
    stream.ingest(9, 1000, video_frame(0, 100))
    stream.ingest(9, 1040, video_frame(1, 50))
    stream.flush()
    stream.successor = link
    stream.detach(old)
    assert stream.source is link and stream.successor is None and stream.is_live
    # The player was told nothing; the queued output ended with the old source.
    assert player.live == [True] and recorder.live == [True, False]
    # The old source's unpublish is announced; the link copy is not (its owner announces).
    assert [e.kind for e in events] == [EventKind.PUBLISH, EventKind.UNPUBLISH]
    assert events[1].details["source"] == "rtmp"
    # The successor's timestamps (its own origin) continue the timeline.
    stream.ingest(9, 0, video_frame(0, 100))
    stream.flush()
    before, after = player.packets[-2].timestamp_ms, player.packets[-1].timestamp_ms
    assert (before, after) == (40, 80)  # one frame step after the old source's last frame
    assert registry.get("live", "cam") is stream
    # The successor leaves like any source: now the players are told, nothing announced.
    stream.detach(link)
    assert player.live == [True, False] and not stream.is_live
    assert len(events) == 2


def test_link_sources_are_not_announced() -> None:
    bus = EventBus()
    events: list[ServerEvent] = []
    bus.subscribe(events.append)
    registry = Registry(scheduler=FakeScheduler(), bus=bus)
    stream = registry.get_or_create("live", "cam")
    link = FakeSource(kind="link")
    stream.attach(link)
    stream.detach(link)
    assert events == [] and registry.get("live", "cam") is None
