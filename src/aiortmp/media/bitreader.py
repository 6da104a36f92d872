"""An MSB-first bit reader for codec headers, with Exp-Golomb and NAL unit helpers.

Video headers (H.264/H.265 parameter sets, the AV1 sequence header, the VP9
uncompressed header) are bit-packed, most significant bit first. :class:`BitReader`
reads them without copying; every read past the end raises
:class:`~aiortmp.media.errors.CodecHeaderError`, so a truncated or hostile header can
only produce that exception.
"""

from __future__ import annotations

from aiortmp.media.errors import CodecHeaderError

__all__ = ["BitReader", "remove_emulation_prevention"]

# ue(v) codes longer than this cannot be valid: "the value of codeNum shall be in the
# range of 0 to 2**32 - 2" (H.264 §9.1, H.265 §9.2), i.e. at most 31 leading zeros.
_MAX_EXP_GOLOMB_LEADING_ZEROS = 31
_EMULATION_PREVENTION = b"\x00\x00\x03"


def remove_emulation_prevention(nal_unit: bytes | bytearray | memoryview) -> bytes:
    """Turn a NAL unit into its raw byte sequence payload (RBSP).

    Encoders insert an ``emulation_prevention_three_byte`` after every two zero bytes
    that would otherwise be followed by a byte <= 0x03. "Within the NAL unit, the
    following three-byte sequences shall not occur at any byte-aligned position:
    0x000000, 0x000001, 0x000002" (H.264 §7.4.1, H.265 §7.4.2), so a decoder drops
    every 0x03 that follows 0x00 0x00.

    Args:
        nal_unit: The NAL unit bytes (header included or not; it is not interpreted).

    Returns:
        The bytes with every emulation prevention byte removed.
    """
    data = bytes(nal_unit)
    if _EMULATION_PREVENTION not in data:
        return data
    out = bytearray()
    start = 0
    search_from = 0
    while True:
        index = data.find(_EMULATION_PREVENTION, search_from)
        if index < 0:
            break
        # Keep the two zero bytes, drop the 0x03. The zero run restarts after it, so
        # the next search begins after the dropped byte.
        out += data[start : index + 2]
        start = index + 3
        search_from = start
    out += data[start:]
    return bytes(out)


class BitReader:
    """Reads unsigned integers, flags and Exp-Golomb codes MSB first.

    The reader never copies the buffer; reading beyond its end raises
    :class:`CodecHeaderError` and leaves the position unchanged.

    Args:
        data: The bytes to read (an RBSP for H.264/H.265: see
            :func:`remove_emulation_prevention`).
        what: A name for error messages, e.g. ``"H.264 SPS"``.
    """

    __slots__ = ("_data", "_position_bits", "_size_bits", "_what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "codec header"):
        self._data = bytes(data)
        self._position_bits = 0
        self._size_bits = len(self._data) * 8
        self._what = what

    @property
    def position_bits(self) -> int:
        """The number of bits consumed so far."""
        return self._position_bits

    @property
    def remaining_bits(self) -> int:
        """The number of bits left to read."""
        return self._size_bits - self._position_bits

    def _need(self, count_bits: int) -> None:
        if count_bits < 0:
            raise CodecHeaderError(f"{self._what}: negative bit count {count_bits}")
        if count_bits > self._size_bits - self._position_bits:
            raise CodecHeaderError(
                f"{self._what} is truncated: needs {count_bits} more bits at bit "
                f"{self._position_bits}, only {self.remaining_bits} left"
            )

    def read_bits(self, count_bits: int) -> int:
        """Read an unsigned integer, ``u(n)`` / ``f(n)``.

        Args:
            count_bits: The width of the field, in bits (0 returns 0).

        Returns:
            The value, most significant bit first.

        Raises:
            CodecHeaderError: Fewer than ``count_bits`` bits are left.
        """
        self._need(count_bits)
        if count_bits == 0:
            return 0
        start = self._position_bits
        end = start + count_bits
        first_byte = start >> 3
        last_byte = (end + 7) >> 3
        chunk = int.from_bytes(self._data[first_byte:last_byte], "big")
        self._position_bits = end
        return (chunk >> ((last_byte << 3) - end)) & ((1 << count_bits) - 1)

    def read_bit(self) -> int:
        """Read one bit.

        Returns:
            0 or 1.

        Raises:
            CodecHeaderError: The data is exhausted.
        """
        self._need(1)
        position = self._position_bits
        self._position_bits = position + 1
        return (self._data[position >> 3] >> (7 - (position & 7))) & 1

    def read_flag(self) -> bool:
        """Read a one-bit flag.

        Returns:
            True for 1, False for 0.

        Raises:
            CodecHeaderError: The data is exhausted.
        """
        return self.read_bit() == 1

    def skip_bits(self, count_bits: int) -> None:
        """Skip bits.

        Args:
            count_bits: How many bits to skip.

        Raises:
            CodecHeaderError: Fewer than ``count_bits`` bits are left.
        """
        self._need(count_bits)
        self._position_bits += count_bits

    def read_ue(self) -> int:
        """Read an unsigned Exp-Golomb code, ``ue(v)`` (H.264 §9.1, H.265 §9.2).

        Returns:
            ``2**leadingZeroBits - 1 + read_bits(leadingZeroBits)``.

        Raises:
            CodecHeaderError: The code is truncated or has more than 31 leading zero
                bits (its value would exceed 2**32 - 2).
        """
        start = self._position_bits
        leading_zeros = 0
        while self.read_bit() == 0:
            leading_zeros += 1
            if leading_zeros > _MAX_EXP_GOLOMB_LEADING_ZEROS:
                self._position_bits = start
                raise CodecHeaderError(f"{self._what}: Exp-Golomb code longer than 32 bits")
        try:
            suffix = self.read_bits(leading_zeros)
        except CodecHeaderError:
            self._position_bits = start
            raise
        return (1 << leading_zeros) - 1 + suffix

    def read_se(self) -> int:
        """Read a signed Exp-Golomb code, ``se(v)`` (H.264 §9.1.1, Table 9-3).

        Returns:
            The value: code numbers 1, 2, 3, 4... map to 1, -1, 2, -2...

        Raises:
            CodecHeaderError: As :meth:`read_ue`.
        """
        code_num = self.read_ue()
        if code_num & 1:
            return (code_num + 1) >> 1
        return -(code_num >> 1)

    def read_uvlc(self) -> int:
        """Read an AV1 variable length unsigned code, ``uvlc()`` (AV1 spec §4.10.3).

        Returns:
            The value; codes with 32 or more leading zeros yield ``2**32 - 1``, as the
            spec says.

        Raises:
            CodecHeaderError: The code is truncated.
        """
        leading_zeros = 0
        # The spec keeps counting zeros without bound; past 32 the value is fixed, and
        # the reads stop at the end of the buffer, so the loop is bounded by the data.
        while self.read_bit() == 0:
            leading_zeros += 1
        if leading_zeros >= 32:
            return (1 << 32) - 1
        return self.read_bits(leading_zeros) + (1 << leading_zeros) - 1

    def byte_align(self) -> None:
        """Skip to the next byte boundary (no-op when already aligned)."""
        self._position_bits = min(self._size_bits, (self._position_bits + 7) & ~7)

    def read_bytes(self, count: int) -> bytes:
        """Read whole bytes from a byte-aligned position.

        Args:
            count: The number of bytes.

        Returns:
            The bytes.

        Raises:
            CodecHeaderError: The reader is not byte-aligned or the data is too short.
        """
        if self._position_bits & 7:
            raise CodecHeaderError(f"{self._what}: byte read at unaligned bit position")
        self._need(count * 8)
        start = self._position_bits >> 3
        self._position_bits += count * 8
        return self._data[start : start + count]
