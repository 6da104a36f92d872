"""Packets: classification, serialization once per wire format, access units."""

from __future__ import annotations

from aiortmp.hub.packet import FLV, Packet, PacketKind, classify, config_key, rtmp_wire
from aiortmp.media.flv import FLVParser
from aiortmp.media.samples import Frame, TrackConfig
from aiortmp.media.tags import (
    AudioFourCC,
    AudioPacketType,
    VideoFourCC,
    VideoPacketType,
    build_audio_tag,
    build_video_tag,
)
from aiortmp.protocol.chunk import ChunkReader

from ..server.media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame


def test_classification() -> None:
    assert classify(9, AVC_SEQUENCE_HEADER) is PacketKind.VIDEO_CONFIG
    assert classify(9, video_frame(0, 1)) is PacketKind.KEYFRAME
    assert classify(9, video_frame(1, 1)) is PacketKind.VIDEO
    assert classify(9, b"") is PacketKind.VIDEO  # invalid: relayed, droppable
    assert classify(8, AAC_SEQUENCE_HEADER) is PacketKind.AUDIO_CONFIG
    assert classify(8, audio_frame()) is PacketKind.AUDIO
    metadata = build_video_tag(
        b"\x02\x00\x09colorInfo\x03\x00\x00\x09",
        codec=VideoFourCC.HEVC,
        packet_type=VideoPacketType.METADATA,
    )
    assert classify(9, metadata) is PacketKind.VIDEO_CONFIG
    multichannel = build_audio_tag(
        b"\x00\x02", codec=AudioFourCC.OPUS, packet_type=AudioPacketType.MULTICHANNEL_CONFIG
    )
    assert classify(8, multichannel) is PacketKind.AUDIO_CONFIG
    # Cached apart from the sequence header of the same track.
    assert config_key(9, metadata) != config_key(9, AVC_SEQUENCE_HEADER)
    assert config_key(8, multichannel) != config_key(8, AAC_SEQUENCE_HEADER)


def test_wire_is_serialized_once_and_reads_back() -> None:
    packet = Packet(9, (1 << 32) + 5, video_frame(0, 300), PacketKind.KEYFRAME)
    rtmp = packet.wire(rtmp_wire(1, 128))
    assert packet.wire(rtmp_wire(1, 128)) is rtmp
    reader = ChunkReader()
    reader.set_chunk_size(128)
    reader.receive_data(rtmp)
    message = reader.next_message()
    assert message is not None
    # The unwrapped timestamp goes out modulo 2**32 (RTMP 1.0 §5.3.1.3).
    assert (message.type_id, message.timestamp_ms, message.message_stream_id) == (9, 5, 1)
    assert message.payload == packet.payload
    parser = FLVParser()
    parser.feed(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
    (tag,) = parser.feed(packet.wire(FLV))
    assert (tag.tag_type, tag.timestamp_ms, tag.payload) == (9, 5, packet.payload)


def test_units_are_parsed_once() -> None:
    header = Packet(9, 0, AVC_SEQUENCE_HEADER, PacketKind.VIDEO_CONFIG)
    (config,) = header.units
    assert isinstance(config, TrackConfig) and config.codec == "avc1"
    frame = Packet(9, 40, video_frame(0, 10), PacketKind.KEYFRAME)
    units = frame.units
    assert units is frame.units
    assert isinstance(units[0], Frame) and units[0].keyframe and units[0].dts_ms == 40
    assert Packet(9, 0, b"\x07", PacketKind.VIDEO).units == []  # malformed: skipped
