"""Tests for aiortmp.protocol.amf0 (Adobe "Action Message Format -- AMF 0")."""

from __future__ import annotations

import ast
import copy
import math
import pickle
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiortmp.protocol import amf0, amf3
from aiortmp.protocol.amf0 import (
    UNDEFINED,
    AMF3Value,
    Decoder,
    ECMAArray,
    TypedObject,
    Undefined,
    XMLDocument,
    decode,
    decode_all,
    encode,
)
from aiortmp.protocol.errors import (
    AMFEncodeError,
    AMFError,
    LimitExceededError,
    RemoteProtocolError,
)

# The body of the `connect` command FFmpeg n9.0.2 sent to a throwaway listener
# (`ffmpeg -re -f lavfi -i testsrc -f flv rtmp://127.0.0.1:45561/app/name`): the
# type-20 message after its 12-byte chunk header, with the one 0xC3 continuation
# header (128-byte chunks) removed.
FFMPEG_CONNECT = bytes.fromhex(
    "020007636f6e6e656374003ff000000000000003000361707002000361707000047479706502000a"
    "6e6f6e707269766174650008666c617368566572020023464d4c452f332e302028636f6d70617469"
    "626c653b204c61766636332e312e313032290005746355726c02001a72746d703a2f2f3132372e30"
    "2e302e313a34353536312f617070000009"
)
FFMPEG_CONNECT_VALUES = [
    "connect",
    1.0,
    {
        "app": "app",
        "type": "nonprivate",
        "flashVer": "FMLE/3.0 (compatible; Lavf63.1.102)",
        "tcUrl": "rtmp://127.0.0.1:45561/app",
    },
]

DECLARED = (AMFError, LimitExceededError)


def same(actual: Any, expected: Any) -> bool:
    """Equality that also checks types all the way down (1.0 is not 1, list is not tuple)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float):
        return bool(
            (math.isnan(actual) and math.isnan(expected))
            or (actual == expected and math.copysign(1, actual) == math.copysign(1, expected))
        )
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same(actual[k], expected[k]) for k in expected
        )
    if isinstance(expected, TypedObject):
        return actual.class_name == expected.class_name and same(
            actual.properties, expected.properties
        )
    if isinstance(expected, datetime):
        return bool(actual == expected and actual.tzinfo == UTC)
    return bool(actual == expected)


# ----------------------------------------------------------------- spec byte vectors

# (hex, value): encode(value) == bytes and decode(bytes) is `same` as value.
CANONICAL: list[tuple[str, Any]] = [
    # §2.2 number: marker, DOUBLE big-endian.
    ("003ff8000000000000", 1.5),
    ("008000000000000000", -0.0),
    # §2.3 boolean.
    ("0101", True),
    ("0100", False),
    # §2.4 string: U16 byte length, UTF-8.
    ("02000568656c6c6f", "hello"),
    ("020000", ""),
    ("020002c3a9", "é"),
    # §2.5 anonymous object, ended by UTF-8-empty + object-end-marker.
    ("030001610101000009", {"a": True}),
    ("03000009", {}),
    # §2.7 null, §2.8 undefined.
    ("05", None),
    ("06", UNDEFINED),
    # §2.10 ECMA array: U32 count, properties, end.
    ("08000000010001610200017a000009", ECMAArray(a="z")),
    # §2.12 strict array: U32 count, values.
    ("0a00000002003ff000000000000005", [1.0, None]),
    ("0a00000000", []),
    # §2.13 date: DOUBLE ms since epoch + S16 time zone (0).
    ("0b4276f5e66e8000000000", datetime(2020, 1, 1, tzinfo=UTC)),
    ("0b00000000000000000000", datetime(1970, 1, 1, tzinfo=UTC)),
    # §2.17 XML document: U32 length.
    ("0f000000043c612f3e", XMLDocument("<a/>")),
    # §2.18 typed object: class name, then properties as §2.5.
    ("100001430001700101000009", TypedObject(class_name="C", properties={"p": True})),
]

# (hex, value) that decode to `value` but are not what the encoder writes.
DECODE_ONLY: list[tuple[str, Any]] = [
    # §2.3: "a non-zero byte value (typically 1) denotes true".
    ("0102", True),
    ("01ff", True),
    # §2.10: the count is advisory; FFmpeg writes 0.
    ("0800000000000161050001620100000009", ECMAArray(a=None, b=False)),
    ("08ffffffff000009", ECMAArray()),
    # §2.13: the time zone is "reserved, not supported"; ignore it.
    ("0b000000000000000001e0", datetime(1970, 1, 1, tzinfo=UTC)),
    # §2.14 long string, even when short.
    ("0c0000000161", "a"),
    # §3.1 avmplus: an AMF3 integer 5, an AMF3 string.
    ("110405", 5),
    ("110607616263", "abc"),
    # A property name that is not ASCII.
    ("030002c3a905000009", {"é": None}),
]

MALFORMED = [
    ("", "empty input"),
    ("04", "movieclip marker (§2.6 reserved)"),
    ("09", "object-end marker as a value"),
    ("0d", "unsupported marker (§2.15)"),
    ("0e", "recordset marker (§2.16 reserved)"),
    ("12", "unknown marker"),
    ("ff", "unknown marker"),
    ("070000", "reference with an empty table"),
    ("0a00000001070001", "reference past the table (only the array itself)"),
    ("020002fffe", "invalid UTF-8"),
    ("020003eda080", "UTF-8-encoded surrogate"),
    ("0300026162", "object ends after a name"),
    ("03000005", "empty name followed by a value marker, not 0x09"),
    ("03000161050000", "object without its end marker"),
    ("0a0000000205", "strict array shorter than its count"),
    ("0affffffff0505050505", "strict array count 2**32-1 with 5 bytes of data"),
    ("0b7ff80000000000000000", "NaN date"),
    ("0b7ff00000000000000000", "infinite date"),
    ("0b7e37e43c8800759c0000", "date beyond year 9999"),
    ("0c0000ffff61", "long string longer than the data"),
    ("10000143", "typed object without properties or end"),
    ("11", "avmplus marker without a value"),
    ("1112", "avmplus marker with an unknown AMF3 marker"),
]


@pytest.mark.parametrize(("hex_bytes", "value"), CANONICAL)
def test_canonical_vectors_encode_and_decode(hex_bytes: str, value: Any) -> None:
    data = bytes.fromhex(hex_bytes)
    assert encode(value) == data
    assert same(decode(data), value)


@pytest.mark.parametrize(("hex_bytes", "value"), CANONICAL + DECODE_ONLY)
def test_vectors_whole_prefixes_and_trailing(hex_bytes: str, value: Any) -> None:
    data = bytes.fromhex(hex_bytes)
    assert same(decode(data), value)
    assert same(decode(memoryview(data)), value)
    assert same(decode(bytearray(data)), value)
    # One byte at a time: no strict prefix of a value is a value.
    for cut in range(len(data)):
        with pytest.raises(AMFError):
            decode(data[:cut])
    # Trailing data: decode() wants exactly one value, decode_all() reads on.
    with pytest.raises(AMFError, match="trailing"):
        decode(data + b"\x05")
    values = decode_all(data + b"\x05")
    assert len(values) == 2 and same(values[0], value) and values[1] is None


@pytest.mark.parametrize(("hex_bytes", "why"), MALFORMED)
def test_malformed_input_raises_amf_error(hex_bytes: str, why: str) -> None:
    with pytest.raises(AMFError):
        decode(bytes.fromhex(hex_bytes))


def test_markers_named_in_errors() -> None:
    with pytest.raises(AMFError, match="0x0D"):
        decode(b"\x0d")
    with pytest.raises(AMFError, match="recordset"):
        decode(b"\x0e")
    with pytest.raises(AMFError, match="0x12"):
        decode(b"\x12")


def test_errors_are_remote_protocol_errors() -> None:
    assert issubclass(AMFError, RemoteProtocolError)
    assert issubclass(LimitExceededError, RemoteProtocolError)


def test_long_string_threshold() -> None:
    # §2.4: a string's length is a U16; beyond 65535 UTF-8 bytes it is a long string (§2.14).
    at_limit = "x" * 0xFFFF
    assert encode(at_limit)[:3] == b"\x02\xff\xff"
    over = "x" * 0x10000
    assert encode(over)[:5] == b"\x0c\x00\x01\x00\x00"
    # The limit counts UTF-8 bytes, not characters.
    wide = "é" * 0x8000
    assert encode(wide)[:5] == b"\x0c\x00\x01\x00\x00"
    for text in (at_limit, over, wide):
        assert decode(encode(text)) == text


# ----------------------------------------------------------------- references (§2.9)


def test_reference_to_earlier_object_returns_the_same_object() -> None:
    # [obj, ref 1]: the strict array itself is index 0, the object index 1.
    value = decode(bytes.fromhex("0a00000002" + "03000009" + "070001"))
    assert value == [{}, {}]
    assert value[0] is value[1]


def test_reference_to_enclosing_object_makes_a_cycle() -> None:
    value = decode(bytes.fromhex("030004" + b"self".hex() + "070000" + "000009"))
    assert value["self"] is value


def test_reference_table_holds_every_complex_kind() -> None:
    # Table: 0 strict array, 1 ECMA array, 2 typed object, 3 object; dates and strings
    # take no slot.
    parts = [
        "0a00000008",
        "0800000000000009",
        "10000143000009",
        "0b00000000000000000000",
        "020000",
        "03000009",
        "070001",
        "070002",
        "070003",
    ]
    data = bytes.fromhex("".join(parts))
    array = decode(data)
    assert array[5] is array[0] and array[6] is array[1] and array[7] is array[4]
    assert type(array[5]) is ECMAArray and type(array[6]) is TypedObject


def test_reference_table_is_shared_across_a_body() -> None:
    values = decode_all(bytes.fromhex("0300016105000009" + "070000"))
    assert values[0] is values[1]


def test_references_are_never_emitted() -> None:
    shared = {"a": 1}
    assert encode([shared, shared]) == encode([{"a": 1}, {"a": 1}])
    assert b"\x07" not in encode([shared, shared])


# ----------------------------------------------------------------- avmplus (§3.1)


def test_amf3_value_wrapper() -> None:
    assert encode(AMF3Value(value=5)) == bytes.fromhex("110405")
    assert encode(AMF3Value(value=b"\x01")) == bytes.fromhex("110c0301")
    assert decode(bytes.fromhex("110c0301")) == b"\x01"


def test_amf3_context_is_shared_by_one_body() -> None:
    # The second "abc" is a string reference into the table the first one filled.
    data = encode(AMF3Value(value="abc"), 1, AMF3Value(value="abc"))
    assert data == bytes.fromhex("110607616263003ff0000000000000110600")
    assert decode_all(data) == ["abc", 1.0, "abc"]


def test_amf3_inside_amf0_object() -> None:
    data = encode({"v": AMF3Value(value=[1, "x"])})
    assert data == bytes.fromhex("03000176110905010401060378000009")
    assert decode(data) == {"v": [1, "x"]}


# ----------------------------------------------------------------- FFmpeg capture


def test_ffmpeg_connect_fixture() -> None:
    values = decode_all(FFMPEG_CONNECT)
    assert same(values, FFMPEG_CONNECT_VALUES)
    assert encode(*values) == FFMPEG_CONNECT


def test_ffmpeg_connect_one_byte_at_a_time() -> None:
    # A cut body either fails or decodes to the complete values before the cut.
    for cut in range(len(FFMPEG_CONNECT)):
        try:
            values = decode_all(FFMPEG_CONNECT[:cut])
        except AMFError:
            continue
        assert values == FFMPEG_CONNECT_VALUES[: len(values)]
        assert len(encode(*values)) == cut


def test_ffmpeg_connect_with_trailing_data() -> None:
    assert decode_all(FFMPEG_CONNECT + b"\x05") == [*FFMPEG_CONNECT_VALUES, None]
    with pytest.raises(AMFError):
        decode_all(FFMPEG_CONNECT + b"\x02\x00")


def test_decoder_reads_incrementally() -> None:
    decoder = Decoder(FFMPEG_CONNECT)
    assert decoder.position == 0 and not decoder.at_end
    assert decoder.read_value() == "connect"
    assert decoder.position == 10
    assert decoder.read_value() == 1.0
    assert decoder.read_value()["app"] == "app"
    assert decoder.at_end and decoder.position == len(FFMPEG_CONNECT)
    with pytest.raises(AMFError):
        decoder.read_value()


def test_decoder_position_is_restored_after_an_error() -> None:
    decoder = Decoder(bytes.fromhex("0500" + "0300016105"))
    assert decoder.read_value() is None
    with pytest.raises(AMFError):
        decoder.read_value()
    assert decoder.position == 1


def test_decode_all_of_empty_input() -> None:
    assert decode_all(b"") == []


# ----------------------------------------------------------------- limits


def nested_objects(levels: int) -> bytes:
    return b"\x03\x00\x01a" * levels + b"\x05" + b"\x00\x00\x09" * levels


def nested_arrays(levels: int) -> bytes:
    return b"\x0a\x00\x00\x00\x01" * levels + b"\x05"


@pytest.mark.parametrize("builder", [nested_objects, nested_arrays])
def test_depth_limit_boundary(builder: Any) -> None:
    assert decode(builder(64)) is not None
    with pytest.raises(LimitExceededError):
        decode(builder(65))
    assert decode(builder(3), max_depth=3) is not None
    with pytest.raises(LimitExceededError):
        decode(builder(4), max_depth=3)


@pytest.mark.parametrize("builder", [nested_objects, nested_arrays])
def test_50000_levels_are_refused_quickly(builder: Any) -> None:
    data = builder(50_000)
    started = time.perf_counter()
    with pytest.raises(LimitExceededError):
        decode(data)
    # Also without a useful max_depth: the Python stack gives out first, and that too
    # is reported as LimitExceededError rather than RecursionError.
    with pytest.raises(LimitExceededError):
        decode(data, max_depth=10**9)
    assert time.perf_counter() - started < 2.0


def test_truncated_deep_nesting_is_amf_error_not_limit() -> None:
    with pytest.raises(AMFError):
        decode(nested_objects(10)[:-5])


def test_amf3_nesting_counts_toward_the_amf0_depth() -> None:
    # 60 AMF0 objects, then AMF3 arrays: the limit applies to the sum.
    def build(amf3_levels: int) -> bytes:
        return (
            b"\x03\x00\x01a" * 60
            + b"\x11"
            + b"\x09\x03\x01" * amf3_levels
            + b"\x01"
            + b"\x00\x00\x09" * 60
        )

    assert decode(build(4)) is not None
    with pytest.raises(LimitExceededError):
        decode(build(5))


def test_huge_strict_array_count_fails_fast() -> None:
    data = bytes.fromhex("0affffffff") + b"\x05" * 5
    started = time.perf_counter()
    with pytest.raises(AMFError, match="4294967295"):
        decode(data)
    assert time.perf_counter() - started < 0.1


def test_huge_string_length_fails_without_allocating() -> None:
    with pytest.raises(AMFError):
        decode(bytes.fromhex("0cffffffff61"))
    with pytest.raises(AMFError):
        decode(bytes.fromhex("0fffffffff61"))


# ----------------------------------------------------------------- encoding


def test_bool_is_not_a_number() -> None:
    assert encode(True) == b"\x01\x01"
    assert encode(1) == bytes.fromhex("003ff0000000000000")


def test_int_becomes_float() -> None:
    assert same(decode(encode(3)), 3.0)
    assert same(decode(encode(2**53)), float(2**53))


def test_tuple_is_a_strict_array() -> None:
    assert encode((1, "a")) == encode([1, "a"])


def test_datetime_encoding() -> None:
    aware = datetime(2020, 1, 1, tzinfo=UTC)
    naive = datetime(2020, 1, 1)
    shifted = datetime(2020, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))
    assert encode(aware) == encode(naive) == encode(shifted)
    decoded = decode(encode(naive))
    assert decoded == aware and decoded.tzinfo == UTC
    # Sub-millisecond precision survives as the fractional part of the double.
    fine = datetime(2020, 1, 1, 0, 0, 0, 1500, tzinfo=UTC)
    assert decode(encode(fine)) == fine


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        b"bytes",
        bytearray(b"x"),
        {1: "non-str key"},
        {"": "empty key"},
        {"a" * 0x10000: "key too long"},
        TypedObject(class_name="a" * 0x10000, properties={}),
        "\ud800",
        {"\udc00": 1},
        10**400,
        complex(1, 2),
        [1, object()],
    ],
    ids=repr,
)
def test_unencodable_values(value: Any) -> None:
    with pytest.raises(AMFEncodeError):
        encode(value)


def test_amf_encode_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode(object())


def test_cyclic_values_are_refused() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(AMFEncodeError, match="cyclic"):
        encode(cyclic)
    obj: dict[str, Any] = {}
    obj["me"] = [obj]
    with pytest.raises(AMFEncodeError, match="cyclic"):
        encode(obj)


def test_very_deep_values_are_refused_on_encode() -> None:
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(AMFEncodeError):
        encode(deep)


def test_nan_round_trip() -> None:
    assert math.isnan(decode(encode(math.nan)))
    assert decode(encode(math.inf)) == math.inf


# ----------------------------------------------------------------- Undefined


def test_undefined_singleton() -> None:
    assert Undefined() is UNDEFINED
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"
    assert copy.copy(UNDEFINED) is UNDEFINED
    assert copy.deepcopy([UNDEFINED])[0] is UNDEFINED
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED
    assert UNDEFINED is not None and UNDEFINED != None  # noqa: E711


def test_value_types() -> None:
    assert ECMAArray(a=1) == {"a": 1} and repr(ECMAArray(a=1)) == "ECMAArray({'a': 1})"
    assert XMLDocument("<a/>") == "<a/>" and repr(XMLDocument("x")) == "XMLDocument('x')"


def test_amf_modules_import_no_io() -> None:
    # The sans-I/O core takes bytes in and gives values out (STYLE.md, "The shape").
    for module in (amf0, amf3):
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert not {name.split(".")[0] for name in imported} & {"asyncio", "socket", "time"}


# ----------------------------------------------------------------- properties

MS_DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))

KEYS = st.text(min_size=1, max_size=8)
SMALL_AMF3 = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**28), 2**28 - 1),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(-5, 5), max_size=3),
)

LEAVES = st.one_of(
    st.none(),
    st.just(UNDEFINED),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False),
    st.text(),
    st.text(max_size=20).map(XMLDocument),
    MS_DATETIMES,
    MS_DATETIMES.map(lambda d: d.replace(tzinfo=UTC)),
    SMALL_AMF3.map(lambda v: AMF3Value(value=v)),
)


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(KEYS, children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4).map(ECMAArray),
        st.builds(
            lambda name, props: TypedObject(class_name=name, properties=props),
            st.text(max_size=8),
            st.dictionaries(KEYS, children, max_size=4),
        ),
    )


VALUES = st.recursive(LEAVES, extend, max_leaves=12)


def expected(value: Any) -> Any:
    """What decode(encode(value)) gives."""
    if isinstance(value, bool) or value is None or value is UNDEFINED:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, list | tuple):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return type(value)({k: expected(v) for k, v in value.items()})
    if isinstance(value, TypedObject):
        return TypedObject(
            class_name=value.class_name,
            properties={k: expected(v) for k, v in value.properties.items()},
        )
    if isinstance(value, AMF3Value):
        return bytes(value.value) if isinstance(value.value, bytes) else value.value
    return value


@given(VALUES)
@settings(max_examples=300)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    assert same(decode(data), expected(value))
    if not has_amf3(value):
        # bytes(parse(x)) == x: the encoding is canonical.
        assert encode(decode(data)) == data


def has_amf3(value: Any) -> bool:
    if isinstance(value, AMF3Value):
        return True
    if isinstance(value, list | tuple):
        return any(map(has_amf3, value))
    if isinstance(value, dict):
        return any(map(has_amf3, value.values()))
    if isinstance(value, TypedObject):
        return has_amf3(value.properties)
    return False


@given(st.lists(VALUES, max_size=4))
def test_round_trip_sequence(values: list[Any]) -> None:
    assert same(decode_all(encode(*values)), [expected(v) for v in values])


@given(st.binary(max_size=300))
@settings(max_examples=1000)
def test_arbitrary_bytes_raise_only_declared_errors(data: bytes) -> None:
    try:
        decode_all(data)
    except DECLARED:
        pass


@given(VALUES, st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_encodings_raise_only_declared_errors(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        at = data.draw(st.integers(0, len(encoded)))
        if action == "insert":
            encoded[at:at] = bytes([data.draw(st.integers(0, 255))])
        elif at < len(encoded):
            if action == "flip":
                encoded[at] = data.draw(st.integers(0, 255))
            else:
                del encoded[at]
    try:
        decode_all(bytes(encoded), max_depth=8)
    except DECLARED:
        pass


def test_module_exports() -> None:
    for name in amf0.__all__:
        assert hasattr(amf0, name), name
