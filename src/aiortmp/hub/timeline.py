"""Timestamp normalization: what a stream's outputs see is monotonic and starts near 0.

Publishers send 32-bit millisecond timestamps (RTMP 1.0 §5.3.1.3: "Timestamps ... wrap
around after about 49 days") that may start anywhere (FFmpeg ``-output_ts_offset``), jump
back when an encoder restarts or a publisher reconnects, or jump ahead after a stall.
Players choke on such input: FFmpeg's FLV demuxer stops at the 2**31 ms boundary ("Packet
is missing PTS"), and a recording's duration becomes days. SRS corrects this with its
``time_jitter``; nginx-rtmp passes timestamps through.

A :class:`Timeline` maps every source timestamp through one offset per stream, so the
relative timing of audio and video (their interleaving, A/V sync) is kept exactly:

1. **Unwrap**: a step of more than 2**31 ms backwards is a wrap of the 32-bit counter.
2. **Rebase** at every new source (publish, republish, a pull that reconnects) and at a
   discontinuity: a coded frame more than ``max_backward_ms`` before, or more than
   ``max_gap_ms`` after, the newest one seen. The offset is chosen so the frame lands one
   step (the last frame interval, clamped to 1–100 ms) after the newest output timestamp:
   outputs see a small, steady advance instead of the jump.
3. Only coded frames drive the timeline. Metadata and configuration packets (which
   encoders often stamp 0 mid-stream) are mapped through the current offset when they are
   near the newest frame (within the same thresholds), else stamped with the newest output
   timestamp, so they can never cause a jump themselves.

The output of the first source starts at 0; a stream's timeline continues across sources,
so players that stay for a republish see time go on. Timestamps are never negative.
"""

from __future__ import annotations

__all__ = ["Timeline"]

_WRAP = 1 << 32
_HALF = 1 << 31


class Timeline:
    """The normalized timeline of one stream.

    Args:
        max_backward_ms: a coded frame this far before the newest one is a discontinuity
            (A/V interleaving within it is kept as is).
        max_gap_ms: a coded frame this far after the newest one is a discontinuity.
        passthrough: keep the source's timestamps as they are (a recorded file played on
            demand, whose player seeks in the file's own time).

    Attributes:
        last_out_ms: the newest normalized timestamp handed out (ms).
        discontinuities: rebases caused by jumps (not by new sources).
    """

    __slots__ = (
        "passthrough",
        "max_backward_ms",
        "max_gap_ms",
        "last_out_ms",
        "discontinuities",
        "_offset",
        "_last_raw",
        "_last_in",
        "_step_ms",
        "_rebase",
        "_started",
    )

    def __init__(
        self, *, max_backward_ms: int = 1000, max_gap_ms: int = 10_000, passthrough: bool = False
    ) -> None:
        self.passthrough = passthrough
        self.max_backward_ms = max_backward_ms
        self.max_gap_ms = max_gap_ms
        self.last_out_ms = 0
        self.discontinuities = 0
        self._offset = 0  # out = unwrapped in + offset
        self._last_raw = 0  # newest raw 32-bit timestamp of a coded frame
        self._last_in = 0  # its unwrapped value
        self._step_ms = 20
        self._rebase = True
        self._started = False

    def new_source(self) -> None:
        """A new source feeds the stream: its first coded frame continues the timeline."""
        self._rebase = True

    def map(self, raw_ms: int, media: bool) -> int:
        """The normalized timestamp of a message.

        Args:
            raw_ms: the timestamp the source sent (ms; the 32-bit RTMP value).
            media: True for coded audio/video frames (they drive the timeline), False for
                data and configuration packets.

        Returns:
            The output timestamp in ms (≥ 0, monotonic for coded frames up to the
            interleaving the source itself has).
        """
        if self.passthrough:
            return raw_ms
        if self._rebase:
            if not media:
                return self.last_out_ms
            self._rebase = False
            unwrapped = raw_ms
            # The first frame of the first source is 0; later sources continue the line.
            start = self.last_out_ms + self._step_ms if self._started else 0
            self._started = True
            self._offset = start - unwrapped
            self._last_raw = raw_ms
            self._last_in = unwrapped
            self.last_out_ms = start
            return start
        delta = raw_ms - self._last_raw
        if delta < -_HALF:
            delta += _WRAP  # the 32-bit counter wrapped
        elif delta > _HALF:
            delta -= _WRAP  # slightly before a wrap we already passed
        unwrapped = self._last_in + delta
        if not media:
            if -self.max_backward_ms <= delta <= self.max_gap_ms:
                out = unwrapped + self._offset
                return out if out >= 0 else 0
            return self.last_out_ms
        if delta < -self.max_backward_ms or delta > self.max_gap_ms:
            self.discontinuities += 1
            self._offset = self.last_out_ms + self._step_ms - unwrapped
            self._last_raw = raw_ms
            self._last_in = unwrapped
        elif delta > 0:
            self._step_ms = min(100, delta)
            self._last_raw = raw_ms
            self._last_in = unwrapped
        out = unwrapped + self._offset
        if out < 0:
            out = 0
        if out > self.last_out_ms:
            self.last_out_ms = out
        return out
