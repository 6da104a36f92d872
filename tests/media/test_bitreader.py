"""Tests for aiortmp.media.bitreader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.bitreader import BitReader, remove_emulation_prevention
from aiortmp.media.errors import CodecHeaderError


def _bits(text: str) -> bytes:
    """Pack a string of 0/1 digits (spaces ignored), zero-padded to whole bytes."""
    digits = text.replace(" ", "")
    digits += "0" * (-len(digits) % 8)
    return int(digits, 2).to_bytes(len(digits) // 8, "big") if digits else b""


def _ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _se(value: int) -> str:
    return _ue(2 * value - 1 if value > 0 else -2 * value)


def test_read_bits_msb_first_across_byte_boundaries() -> None:
    reader = BitReader(bytes([0b1011_0011, 0b0101_1100]))
    assert reader.read_bits(1) == 1
    assert reader.read_bits(3) == 0b011
    assert reader.read_bits(6) == 0b0011_01
    assert reader.position_bits == 10
    assert reader.remaining_bits == 6
    assert reader.read_bits(0) == 0
    assert reader.read_bits(6) == 0b01_1100
    assert reader.remaining_bits == 0


def test_read_bits_wide_field() -> None:
    data = bytes(range(1, 10))
    reader = BitReader(data)
    reader.skip_bits(4)
    assert reader.read_bits(64) == (int.from_bytes(data, "big") >> 4) & ((1 << 64) - 1)


def test_read_bit_and_flag() -> None:
    reader = BitReader(b"\x80")
    assert reader.read_flag() is True
    assert reader.read_bit() == 0


@pytest.mark.parametrize(
    ("code", "value"),
    [("1", 0), ("010", 1), ("011", 2), ("00100", 3), ("00111", 6), ("0001000", 7)],
)
def test_read_ue_table_9_2(code: str, value: int) -> None:
    # H.264 Table 9-2: bit strings and their codeNum.
    assert BitReader(_bits(code)).read_ue() == value


@pytest.mark.parametrize(("code_num", "value"), [(0, 0), (1, 1), (2, -1), (3, 2), (4, -2), (5, 3)])
def test_read_se_table_9_3(code_num: int, value: int) -> None:
    assert BitReader(_bits(_ue(code_num))).read_se() == value


def test_read_ue_largest_valid_value() -> None:
    # 31 leading zeros: codeNum 2**32 - 2 at most.
    assert BitReader(_bits(_ue(2**32 - 2))).read_ue() == 2**32 - 2


def test_read_ue_rejects_codes_longer_than_32_bits() -> None:
    reader = BitReader(_bits("0" * 32 + "1" + "0" * 32))
    with pytest.raises(CodecHeaderError, match="longer than 32"):
        reader.read_ue()
    assert reader.position_bits == 0


def test_read_ue_truncated_suffix_leaves_position() -> None:
    reader = BitReader(_bits("1 00001 00"))  # "1", then a code missing 2 suffix bits
    assert reader.read_ue() == 0
    with pytest.raises(CodecHeaderError):
        reader.read_ue()
    assert reader.position_bits == 1


def test_read_ue_all_zero_data_is_truncated() -> None:
    with pytest.raises(CodecHeaderError):
        BitReader(b"\x00\x00").read_ue()


@pytest.mark.parametrize(("code", "value"), [("1", 0), ("010", 1), ("011", 2), ("00101", 4)])
def test_read_uvlc(code: str, value: int) -> None:
    assert BitReader(_bits(code)).read_uvlc() == value


def test_read_uvlc_saturates_after_32_leading_zeros() -> None:
    # AV1 §4.10.3: "if ( leadingZeros >= 32 ) return ( 1 << 32 ) - 1".
    assert BitReader(_bits("0" * 40 + "1")).read_uvlc() == 2**32 - 1


def test_reading_past_the_end_raises_and_keeps_position() -> None:
    reader = BitReader(b"\xff", "test header")
    reader.read_bits(5)
    with pytest.raises(CodecHeaderError, match="test header is truncated"):
        reader.read_bits(4)
    assert reader.position_bits == 5
    with pytest.raises(CodecHeaderError):
        reader.skip_bits(4)
    assert reader.read_bits(3) == 0b111
    with pytest.raises(CodecHeaderError):
        reader.read_bit()


def test_negative_bit_count_raises() -> None:
    with pytest.raises(CodecHeaderError):
        BitReader(b"\x00").read_bits(-1)


def test_byte_align_and_read_bytes() -> None:
    reader = BitReader(b"\xab\xcd\xef")
    reader.byte_align()
    assert reader.position_bits == 0
    reader.read_bits(3)
    with pytest.raises(CodecHeaderError, match="unaligned"):
        reader.read_bytes(1)
    reader.byte_align()
    assert reader.read_bytes(2) == b"\xcd\xef"
    with pytest.raises(CodecHeaderError):
        reader.read_bytes(1)


def test_empty_data() -> None:
    reader = BitReader(b"")
    assert reader.remaining_bits == 0
    reader.byte_align()
    with pytest.raises(CodecHeaderError):
        reader.read_bit()


@pytest.mark.parametrize(
    ("escaped", "raw"),
    [
        (b"", b""),
        (b"\x67\x42\x00\x1f", b"\x67\x42\x00\x1f"),
        (b"\x00\x00\x03\x01", b"\x00\x00\x01"),
        (b"\x00\x00\x03\x00\x00\x03", b"\x00\x00\x00\x00"),
        (b"\x00\x00\x03", b"\x00\x00"),
        (b"\x00\x00\x03\x03", b"\x00\x00\x03"),
        # After a removed byte the zero count restarts: 00 03 is kept.
        (b"\x00\x00\x03\x00\x03", b"\x00\x00\x00\x03"),
        (b"\x00\x03\x00\x00\x03\x02\xff", b"\x00\x03\x00\x00\x02\xff"),
    ],
)
def test_remove_emulation_prevention(escaped: bytes, raw: bytes) -> None:
    assert remove_emulation_prevention(escaped) == raw
    assert remove_emulation_prevention(bytearray(escaped)) == raw


def _escape(raw: bytes) -> bytes:
    """Insert emulation prevention bytes as an H.264 encoder does (§7.4.1)."""
    out = bytearray()
    zeros = 0
    for byte in raw:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@given(st.binary(max_size=64))
def test_emulation_prevention_round_trip(raw: bytes) -> None:
    assert remove_emulation_prevention(_escape(raw)) == raw


_FIELD = st.one_of(
    st.tuples(st.just("u"), st.integers(1, 40)).flatmap(
        lambda kind_width: st.tuples(
            st.just(kind_width[0]),
            st.just(kind_width[1]),
            st.integers(0, 2 ** kind_width[1] - 1),
        )
    ),
    st.tuples(st.just("ue"), st.just(0), st.integers(0, 2**32 - 2)),
    st.tuples(st.just("se"), st.just(0), st.integers(-(2**31) + 1, 2**31 - 1)),
)


@given(st.lists(_FIELD, max_size=20))
def test_fields_round_trip(fields: list[tuple[str, int, int]]) -> None:
    encoded = ""
    for kind, width, value in fields:
        if kind == "u":
            encoded += format(value, f"0{width}b")
        elif kind == "ue":
            encoded += _ue(value)
        else:
            encoded += _se(value)
    reader = BitReader(_bits(encoded))
    for kind, width, value in fields:
        if kind == "u":
            assert reader.read_bits(width) == value
        elif kind == "ue":
            assert reader.read_ue() == value
        else:
            assert reader.read_se() == value
    assert reader.position_bits == len(encoded)


@given(st.binary(max_size=16), st.lists(st.integers(0, 3), max_size=40))
def test_random_reads_raise_only_codec_header_error(data: bytes, ops: list[int]) -> None:
    reader = BitReader(data)
    for op in ops:
        try:
            if op == 0:
                reader.read_ue()
            elif op == 1:
                reader.read_se()
            elif op == 2:
                reader.read_uvlc()
            else:
                reader.read_bits(13)
        except CodecHeaderError:
            pass
        assert 0 <= reader.position_bits <= len(data) * 8
