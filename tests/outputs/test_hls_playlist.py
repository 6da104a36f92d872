"""Media playlist windows and playlist text (src/aiortmp/outputs/hls/playlist.py).

Every rendered playlist is parsed with the ``m3u8`` package (RFC 8216bis tags included).
"""

from __future__ import annotations

import m3u8
import pytest

from aiortmp.outputs.hls.playlist import (
    MediaPlaylist,
    RenditionReport,
    VariantStream,
    format_date_time,
    render_multivariant,
)

T0 = 1_700_000_000.0


def playlist(**options: object) -> MediaPlaylist:
    settings: dict[str, object] = {
        "name": "v0-0011aabb-",
        "extension": "m4s",
        "low_latency": True,
        "segment_target_s": 1.0,
        "part_target_s": 0.2,
        "window_segments": 12,
        "max_bytes": 1 << 30,
    }
    settings.update(options)
    return MediaPlaylist(**settings)  # type: ignore[arg-type]


def fill(
    pl: MediaPlaylist,
    segments: int,
    *,
    parts: int = 5,
    open_parts: int = 0,
    part_s: float = 0.2,
    init: str | None = "init0.mp4",
) -> None:
    """Add complete segments of ``parts`` parts, then a growing one of ``open_parts``."""
    for n in range(segments + (1 if open_parts else 0)):
        start = T0 + n * parts * part_s
        pl.open_segment(program_date_time_s=start, init_uri=init)
        count = parts if n < segments else open_parts
        for index in range(count):
            pl.add_part(bytes([n, index]) * 10, duration_s=part_s, independent=index == 0)
        if n < segments:
            pl.close_segment()


def test_date_time_is_iso_8601_with_milliseconds() -> None:
    assert format_date_time(T0 + 0.0625) == "2023-11-14T22:13:20.062Z"
    assert format_date_time(0) == "1970-01-01T00:00:00.000Z"


def test_rendered_low_latency_playlist_parses() -> None:
    pl = playlist()
    fill(pl, 3, open_parts=2)
    text = pl.render(
        query="?token=x",
        reports=[RenditionReport(uri="v1.m3u8", last_msn=3, last_part=1)],
    )
    parsed = m3u8.loads(text)
    assert parsed.version == 9
    assert parsed.target_duration == 1
    assert parsed.media_sequence == 0
    assert parsed.server_control.can_block_reload == "YES"
    assert parsed.server_control.can_skip_until == 6.0
    assert parsed.server_control.part_hold_back == pytest.approx(0.6)
    assert parsed.part_inf.part_target == pytest.approx(0.2)
    complete = [s for s in parsed.segments if s.uri]
    assert [s.uri for s in complete] == [f"v0-0011aabb-{n}.m4s?token=x" for n in range(3)]
    assert all(s.duration == pytest.approx(1.0) for s in complete)
    assert complete[0].init_section.uri == "init0.mp4?token=x"
    assert complete[1].program_date_time.timestamp() == pytest.approx(T0 + 1.0)
    growing = parsed.segments[-1]
    assert growing.uri is None
    assert [p.uri for p in growing.parts] == [
        "v0-0011aabb-3.0.m4s?token=x",
        "v0-0011aabb-3.1.m4s?token=x",
    ]
    assert growing.parts[0].independent == "YES" and growing.parts[1].independent is None
    assert parsed.preload_hint.uri == "v0-0011aabb-3.2.m4s?token=x"
    report = parsed.rendition_reports[0]
    assert (report.uri, report.last_msn, report.last_part) == ("v1.m3u8?token=x", 3, 1)
    assert "#EXT-X-ENDLIST" not in text


def test_parts_are_listed_for_the_last_three_target_durations_only() -> None:
    pl = playlist()
    fill(pl, 8, open_parts=1)
    parsed = m3u8.loads(pl.render())
    with_parts = [s.uri for s in parsed.segments if s.parts]
    # 8 s of complete segments + 0.2 s: parts of segments ending in the last 3 s.
    assert with_parts == ["v0-0011aabb-5.m4s", "v0-0011aabb-6.m4s", "v0-0011aabb-7.m4s", None]


def test_has_part_treats_a_part_past_the_end_of_a_segment_as_the_next_segment() -> None:
    pl = playlist()
    assert not pl.has_part(0, 0) and pl.next_part == (0, 0)
    fill(pl, 1, open_parts=2)
    assert pl.last_part == (1, 1) and pl.next_part == (1, 2)
    assert pl.has_part(0, 4) and pl.has_part(0, 9)  # §6.2.5.2: "or later"
    assert pl.has_part(1, 1) and not pl.has_part(1, 2) and not pl.has_part(2, 0)
    assert pl.has_segment(0) and not pl.has_segment(1)
    assert pl.part(1, 1) is not None and pl.part(1, 2) is None and pl.part(7, 0) is None


def test_a_complete_segment_holds_its_parts_as_views_of_one_copy() -> None:
    pl = playlist()
    fill(pl, 1)
    segment = pl.segments[0]
    assert segment.data == b"".join(bytes(p.data) for p in segment.parts)
    assert all(isinstance(p.data, memoryview) for p in segment.parts)
    assert pl.bytes_held == len(segment.data)


def test_window_keeps_window_segments_and_counts_discontinuities() -> None:
    pl = playlist(window_segments=4)
    fill(pl, 3)
    pl.open_segment(program_date_time_s=T0 + 3, init_uri="init1.mp4", discontinuity=True)
    pl.add_part(b"x", duration_s=1.0, independent=True)
    pl.close_segment()
    fill(pl, 3, init="init1.mp4")
    # The discontinuous segment is the first one: its tag stays with it.
    assert pl.media_sequence == 3 and pl.complete_count == 4
    assert pl.discontinuity_sequence == 0
    text = pl.render()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1 and "init1.mp4" in text
    fill(pl, 1, init="init1.mp4")  # it leaves the window with its tag
    assert pl.media_sequence == 4 and pl.discontinuity_sequence == 1
    parsed = m3u8.loads(pl.render())
    assert parsed.discontinuity_sequence == 1
    assert "#EXT-X-DISCONTINUITY\n" not in pl.render()


def test_window_is_bounded_in_bytes_but_keeps_three_target_durations() -> None:
    pl = playlist(max_bytes=100)
    fill(pl, 10)  # 100 bytes per segment
    assert pl.complete_count == 3  # the floor: 3 x Target Duration
    assert pl.bytes_held == 300


def test_delta_update_skips_segments_before_the_skip_boundary() -> None:
    pl = playlist(window_segments=20)
    fill(pl, 10, open_parts=2)
    assert pl.skippable() == 4  # ends at <= 10.4 - 6 s
    full = m3u8.loads(pl.render())
    text = pl.render(skip=True, query="?k=1")
    delta = m3u8.loads(text)
    assert delta.skip.skipped_segments == 4
    assert delta.media_sequence == 0
    assert [s.uri for s in delta.segments] == [s.uri + "?k=1" for s in full.segments[4:-1]] + [None]
    # The initialization section is named again before the first segment listed.
    assert delta.segments[0].init_section.uri == "init0.mp4?k=1"
    assert "#EXT-X-SKIP" not in pl.render(skip=False)
    short = playlist()
    fill(short, 3)
    assert "#EXT-X-SKIP" not in short.render(skip=True)  # nothing old enough


def test_target_duration_follows_the_longest_segment_and_never_shrinks() -> None:
    pl = playlist()
    fill(pl, 1, parts=12, part_s=0.2)  # 2.4 s
    assert pl.target_duration_s == 2
    fill(pl, 1, parts=14, part_s=0.2)  # 2.8 s rounds to 3
    fill(pl, 1)
    assert pl.target_duration_s == 3
    assert pl.can_skip_until_s == 18.0


def test_part_target_grows_to_the_longest_part() -> None:
    pl = playlist()
    fill(pl, 1, part_s=0.2083333)
    assert pl.part_target_s == pytest.approx(0.209)
    assert "PART-TARGET=0.209" in pl.render()


def test_ended_playlist_has_endlist_and_no_hint() -> None:
    pl = playlist()
    fill(pl, 2)
    pl.open_segment(program_date_time_s=T0 + 2, init_uri="init0.mp4")
    pl.end()  # the empty growing segment is dropped
    parsed = m3u8.loads(pl.render())
    assert parsed.is_endlist and parsed.preload_hint is None
    assert len(parsed.segments) == 2


def test_classic_rendering_of_a_low_latency_playlist() -> None:
    pl = playlist()
    fill(pl, 2, open_parts=1)
    text = pl.render(low_latency=False)
    assert "#EXT-X-PART" not in text and "SERVER-CONTROL" not in text and "PRELOAD" not in text
    parsed = m3u8.loads(text)
    assert parsed.version == 6 and len(parsed.segments) == 2


def test_ts_playlist() -> None:
    pl = playlist(extension="ts", low_latency=False)
    for n in range(3):
        pl.open_segment(program_date_time_s=T0 + n, init_uri=None)
        pl.close_segment(b"\x47" * 188, duration_s=1.0)
    pl.open_segment(program_date_time_s=T0 + 3, init_uri=None)
    parsed = m3u8.loads(pl.render())
    assert parsed.version == 3
    assert [s.uri for s in parsed.segments] == [f"v0-0011aabb-{n}.ts" for n in range(3)]
    assert parsed.segments[0].init_section is None


def test_changes_on_a_closed_segment_are_refused() -> None:
    pl = playlist()
    with pytest.raises(ValueError):
        pl.add_part(b"x", duration_s=0.2, independent=True)
    pl.open_segment(program_date_time_s=T0, init_uri=None)
    with pytest.raises(ValueError):
        pl.open_segment(program_date_time_s=T0, init_uri=None)


def test_multivariant_playlist_parses() -> None:
    text = render_multivariant(
        [
            VariantStream(
                uri="v0.m3u8",
                bandwidth_bps=1_200_000,
                average_bandwidth_bps=900_000,
                codecs=("avc1.64001f", "mp4a.40.2"),
                resolution=(1280, 720),
                frame_rate=30.0,
            ),
            VariantStream(
                uri="v1.m3u8",
                bandwidth_bps=0,
                average_bandwidth_bps=None,
                codecs=("mp4a.40.2",),
                resolution=None,
                frame_rate=None,
            ),
        ],
        query="?token=t",
    )
    parsed = m3u8.loads(text)
    assert parsed.is_variant
    first, second = parsed.playlists
    assert first.uri == "v0.m3u8?token=t"
    info = first.stream_info
    assert info.bandwidth == 1_200_000 and info.average_bandwidth == 900_000
    assert info.codecs == "avc1.64001f,mp4a.40.2"
    assert info.resolution == (1280, 720) and info.frame_rate == 30.0
    assert second.stream_info.bandwidth == 1 and second.stream_info.resolution is None
