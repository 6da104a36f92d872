"""Timestamp normalization: wraps, jumps, gaps and new sources (hub/timeline.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiortmp.hub.timeline import Timeline

U32 = 1 << 32


def run(timeline: Timeline, raws: list[int], media: bool = True) -> list[int]:
    return [timeline.map(raw % U32, media) for raw in raws]


def test_first_frame_starts_at_zero_and_offsets_are_kept() -> None:
    timeline = Timeline()
    assert run(timeline, [5000, 5033, 5066, 5023]) == [0, 33, 66, 23]  # audio behind video


def test_wrap_at_2_32_is_unwrapped() -> None:
    start = U32 - 100
    raws = [start + 40 * i for i in range(6)]  # crosses 2**32 between the 3rd and 4th
    assert run(Timeline(), raws) == [40 * i for i in range(6)]


def test_2_31_boundary_is_just_a_number() -> None:
    start = (1 << 31) - 100
    raws = [start + 40 * i for i in range(6)]
    assert run(Timeline(), raws) == [40 * i for i in range(6)]


def test_output_offset_start_never_reaches_the_32_bit_boundaries() -> None:
    """FFmpeg -output_ts_offset 4294957 (s): 10 s before 2**32 ms, 20 s of media."""
    timeline = Timeline()
    raws = [4294957000 + 33 * i for i in range(600)]
    out = run(timeline, raws)
    assert out[0] == 0 and out[-1] == 33 * 599
    assert all(b > a for a, b in zip(out, out[1:], strict=False))
    assert timeline.discontinuities == 0


def test_backward_jump_continues_after_the_newest_timestamp() -> None:
    """An encoder restart: timestamps go back to 0; outputs see a small step instead."""
    timeline = Timeline()
    out = run(timeline, [100_000, 100_040, 100_080, 0, 40])
    assert out[:3] == [0, 40, 80]
    assert out[3] == 80 + 40 and out[4] == 80 + 80  # one step (the last interval) later
    assert timeline.discontinuities == 1


def test_forward_gap_is_closed() -> None:
    timeline = Timeline(max_gap_ms=10_000)
    out = run(timeline, [0, 40, 3_600_000, 3_600_040])
    assert out == [0, 40, 80, 120]
    assert timeline.discontinuities == 1


def test_small_forward_steps_and_interleaving_are_not_discontinuities() -> None:
    timeline = Timeline(max_backward_ms=1000, max_gap_ms=10_000)
    out = run(timeline, [0, 900, 0 + 500, 9_000])
    assert out == [0, 900, 500, 9_000]
    assert timeline.discontinuities == 0


def test_new_source_continues_the_timeline() -> None:
    timeline = Timeline()
    first = run(timeline, [0, 40, 80])
    timeline.new_source()
    second = run(timeline, [0, 40])  # a republish starts at 0 again
    assert first == [0, 40, 80] and second == [120, 160]


def test_data_packets_never_move_the_timeline() -> None:
    timeline = Timeline()
    assert timeline.map(0, False) == 0  # metadata before any frame
    run(timeline, [10_000, 10_040])
    assert timeline.map(0, False) == 40  # onMetaData stamped 0 mid-stream: newest output
    assert timeline.map(10_060, False) == 60  # a cue point just ahead: mapped
    assert run(timeline, [10_080]) == [80]


@given(
    start=st.integers(0, U32 - 1),
    steps=st.lists(st.integers(-3_000_000_000, 3_000_000_000), min_size=1, max_size=60),
)
def test_coded_frames_never_go_back_more_than_the_tolerance(start: int, steps: list[int]) -> None:
    """Whatever a source sends, outputs get timestamps ≥ 0 that never fall more than
    ``max_backward_ms`` below the newest one (interleaving), and never jump ahead more
    than ``max_gap_ms``."""
    timeline = Timeline(max_backward_ms=1000, max_gap_ms=10_000)
    raw = start
    newest = timeline.map(raw, True)
    for step in steps:
        raw = (raw + step) % U32
        out = timeline.map(raw, True)
        assert out >= 0
        assert out >= newest - 1000
        assert out <= newest + 10_000
        newest = max(newest, out)
