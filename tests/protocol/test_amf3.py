"""Tests for aiortmp.protocol.amf3 (Adobe "Action Message Format -- AMF 3")."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiortmp.protocol import amf3
from aiortmp.protocol.amf0 import UNDEFINED, AMF3Value, ECMAArray, TypedObject, XMLDocument
from aiortmp.protocol.amf3 import (
    XML,
    AMF3Array,
    Decoder,
    Dictionary,
    Encoder,
    Vector,
    VectorKind,
    decode,
    decode_all,
    encode,
)
from aiortmp.protocol.errors import AMFEncodeError, AMFError, LimitExceededError

DECLARED = (AMFError, LimitExceededError)


def same(actual: Any, expected: Any) -> bool:
    """Equality that also checks types all the way down."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float):
        return bool(
            (math.isnan(actual) and math.isnan(expected))
            or (actual == expected and math.copysign(1, actual) == math.copysign(1, expected))
        )
    if isinstance(expected, list | tuple):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same(actual[k], expected[k]) for k in expected
        )
    if isinstance(expected, TypedObject):
        return actual.class_name == expected.class_name and same(
            actual.properties, expected.properties
        )
    if isinstance(expected, AMF3Array):
        return same(actual.dense, expected.dense) and same(actual.assoc, expected.assoc)
    if isinstance(expected, Vector):
        return (
            actual.kind is expected.kind
            and actual.fixed == expected.fixed
            and actual.class_name == expected.class_name
            and same(actual.items, expected.items)
        )
    if isinstance(expected, Dictionary):
        return actual.weak_keys == expected.weak_keys and same(actual.items, expected.items)
    if isinstance(expected, datetime):
        return bool(actual == expected and actual.tzinfo == UTC)
    return bool(actual == expected)


def utf8vr(text: str) -> str:
    """Hex of an inline UTF-8-vr (AMF3 §1.3.2) for short strings."""
    data = text.encode()
    assert len(data) < 64
    return f"{(len(data) << 1) | 1:02x}{data.hex()}"


# ----------------------------------------------------------------- spec byte vectors

# (hex, value): encode(value) == bytes and decode(bytes) is `same` as value.
CANONICAL: list[tuple[str, Any]] = [
    # §3.2–§3.5
    ("00", UNDEFINED),
    ("01", None),
    ("02", False),
    ("03", True),
    # §3.6 integer, U29 (§1.3.1) at every length boundary, signed 29-bit.
    ("0400", 0),
    ("047f", 127),
    ("048100", 128),
    ("04ff7f", 16383),
    ("04818000", 16384),
    ("04ffff7f", 2097151),
    ("0480c08000", 2097152),
    ("04bfffffff", 2**28 - 1),
    ("04ffffffff", -1),
    ("04c0808000", -(2**28)),
    # §3.6: an integer outside the signed 29-bit range is sent as a double.
    ("0541b0000000000000", float(2**28)),
    # §3.7 double
    ("053fe0000000000000", 0.5),
    ("058000000000000000", -0.0),
    # §3.8 String: UTF-8-vr; the empty string is always inline.
    ("06" + utf8vr("hello"), "hello"),
    ("0601", ""),
    # §3.9 XMLDocument, §3.13 XML: U29X-value.
    ("07" + utf8vr("<a/>"), XMLDocument("<a/>")),
    ("0b" + utf8vr("<a/>"), XML("<a/>")),
    # §3.10 Date: U29D-value (inline flag) + DOUBLE ms.
    ("08014276f5e66e800000", datetime(2020, 1, 1, tzinfo=UTC)),
    # §3.11 Array: U29A-value dense count, associative part ended by "", dense values.
    ("09050104010402", [1, 2]),
    ("090101", []),
    ("0903" + utf8vr("a") + "0401" + "01" + "0402", AMF3Array(dense=[2], assoc={"a": 1})),
    ("0901" + utf8vr("k") + "03" + "01", AMF3Array(dense=[], assoc={"k": True})),
    # §3.12 Object: anonymous dynamic (0x0B = inline, inline traits, dynamic, 0 sealed).
    ("0a0b01" + utf8vr("a") + "0401" + "01", {"a": 1}),
    ("0a0b0101", {}),
    # Typed object with one sealed member (0x13 = 1 sealed, inline traits, not dynamic).
    (
        "0a13" + utf8vr("C") + utf8vr("p") + "0405",
        TypedObject(class_name="C", properties={"p": 5}),
    ),
    # §3.14 ByteArray: U29B-value + bytes.
    ("0c07010203", b"\x01\x02\x03"),
    ("0c01", b""),
    # §3.15 Vector: U29V-value count, fixed flag, items (S32 / U32 / DOUBLE / values).
    ("0d0500ffffffff00000001", Vector(kind=VectorKind.INT, items=[-1, 1])),
    ("0e0301ffffffff", Vector(kind=VectorKind.UINT, items=[2**32 - 1], fixed=True)),
    ("0f03003ff0000000000000", Vector(kind=VectorKind.DOUBLE, items=[1.0])),
    (
        "1005" + "00" + utf8vr("Foo") + "0401" + "0601",
        Vector(kind=VectorKind.OBJECT, items=[1, ""], class_name="Foo"),
    ),
    ("100100" + "01", Vector(kind=VectorKind.OBJECT, items=[])),
    # §3.16 Dictionary: U29Dict-value count, weak-keys flag, key/value pairs.
    ("110300" + "06" + utf8vr("k") + "0405", Dictionary(items=[("k", 5)])),
    ("110301" + "0401" + "01", Dictionary(items=[(1, None)], weak_keys=True)),
]

# (hex, value) that decode to `value` but are not what the encoder writes.
DECODE_ONLY: list[tuple[str, Any]] = [
    # A U29 may be padded with redundant continuation bytes.
    ("048001", 1),
    # §3.10: the bits above the inline flag of U29D are not significant.
    ("08034276f5e66e800000", datetime(2020, 1, 1, tzinfo=UTC)),
    # Anonymous object with sealed members decodes as a dict too.
    ("0a13" + "01" + utf8vr("p") + "0405", {"p": 5}),
    # Typed and dynamic: sealed and dynamic members merge.
    (
        "0a1b" + utf8vr("C") + utf8vr("p") + "0401" + utf8vr("q") + "0402" + "01",
        TypedObject(class_name="C", properties={"p": 1, "q": 2}),
    ),
    # Externalizable (0x07 = inline, inline traits, externalizable): the Flex wrappers.
    ("0a07" + utf8vr("flex.messaging.io.ArrayCollection") + "0903010401", [1]),
    ("0a07" + utf8vr("flex.messaging.io.ObjectProxy") + "0a0b0101", {}),
]

MALFORMED = [
    ("", "empty input"),
    ("12", "unknown marker"),
    ("ff", "unknown marker"),
    ("0600", "string reference with an empty table"),
    ("0a00", "object reference with an empty table"),
    ("0a01", "traits reference with an empty table"),
    ("0700", "XMLDocument reference with an empty table"),
    ("0800", "date reference with an empty table"),
    ("0c00", "ByteArray reference with an empty table"),
    ("0d00", "vector reference with an empty table"),
    ("1100", "dictionary reference with an empty table"),
    ("0603ff", "invalid UTF-8"),
    ("0605c3", "string shorter than its length"),
    ("04ff", "truncated U29"),
    ("0a07" + utf8vr("com.example.Unknown"), "externalizable class without a reader"),
    (
        "0a07" + utf8vr("flex.messaging.io.ArrayCollection") + "0a00",
        "self-reference in an externalizable",
    ),
    ("08017ff8000000000000", "NaN date"),
    ("09bfffffff01", "array count 2**28-1 with no data"),
    ("0dbfffffff00", "int vector count 2**28-1 with no data"),
    ("0fbfffffff00", "double vector count 2**28-1 with no data"),
    ("10bfffffff0001", "object vector count 2**28-1 with no data"),
    ("11bfffffff00", "dictionary count 2**28-1 with no data"),
    ("0affffffff", "sealed member count 2**25-1 with no data"),
    ("0cbfffffff", "ByteArray length 2**28-1 with no data"),
    ("0a0b01" + utf8vr("a") + "04", "dynamic member value truncated"),
    ("0a0b01" + utf8vr("a") + "0401", "dynamic members without the empty-string end"),
    ("0d0500ffffffff", "int vector shorter than its count"),
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
    # One byte at a time: no strict prefix of a value is a value.
    for cut in range(len(data)):
        with pytest.raises(AMFError):
            decode(data[:cut])
    with pytest.raises(AMFError, match="trailing"):
        decode(data + b"\x01")
    values = decode_all(data + b"\x01")
    assert len(values) == 2 and same(values[0], value) and values[1] is None


@pytest.mark.parametrize(("hex_bytes", "why"), MALFORMED)
def test_malformed_input_raises_amf_error(hex_bytes: str, why: str) -> None:
    with pytest.raises(AMFError):
        decode(bytes.fromhex(hex_bytes))


def test_large_integers_become_doubles() -> None:
    assert encode(2**28) == bytes.fromhex("0541b0000000000000")
    assert encode(-(2**28) - 1)[0] == 0x05
    assert same(decode(encode(2**40)), float(2**40))
    assert encode(True) == b"\x03"  # bool before int


# ----------------------------------------------------------------- reference tables


def test_encoder_emits_string_references() -> None:
    data = encode("abc", "abc", "", "")
    assert data == bytes.fromhex("0607616263" + "0600" + "0601" + "0601")
    assert decode_all(data) == ["abc", "abc", "", ""]


def test_strings_in_names_share_the_table() -> None:
    # Table: 0 "a" (key), so the value "a" is a reference.
    data = encode({"a": "a"})
    assert data == bytes.fromhex("0a0b01" + utf8vr("a") + "0600" + "01")


def test_encoder_emits_object_references() -> None:
    shared: dict[str, Any] = {}
    data = encode([shared, shared])
    # Table: 0 the array, 1 the object; the second element is object reference 1.
    assert data == bytes.fromhex("0905" + "01" + "0a0b0101" + "0a02")
    value = decode(data)
    assert value[0] is value[1]


def test_encoder_emits_trait_references() -> None:
    # The byte sequence another AMF3 library produces for [DTO(field="value")] * 2,
    # checked by hand against §3.12: traits inline (0x1b: 1 sealed member, dynamic),
    # then by reference (0x01: traits index 0); "value" as string reference 2.
    data = bytes.fromhex("0905010a1b0744544f0b6669656c64060b76616c7565010a01060401")
    dto = TypedObject(class_name="DTO", properties={"field": "value"})
    assert same(decode(data), [dto, dto])
    # Ours writes sealed-only traits (0x13) and no dynamic terminator, with the same
    # trait reference for the second object.
    ours = encode([dto, TypedObject(class_name="DTO", properties={"field": "value"})])
    assert ours == bytes.fromhex("0905010a130744544f0b6669656c64060b76616c75650a010604")
    assert same(decode(ours), [dto, dto])


def test_other_object_kinds_are_referenced() -> None:
    when = datetime(2020, 1, 1, tzinfo=UTC)
    blob = b"xyz"
    xml = XML("<a/>")
    vector = Vector(kind=VectorKind.INT, items=[1])
    dictionary = Dictionary(items=[])
    data = encode([when, when, blob, blob, xml, xml, vector, vector, dictionary, dictionary])
    decoded = decode(data)
    for i in range(0, 10, 2):
        assert decoded[i] is decoded[i + 1]
    # Each repeat costs two bytes: marker and U29 reference.
    assert len(data) == len(encode([when, blob, xml, vector, dictionary])) + 5 * 2


def test_cycles_encode_as_references() -> None:
    obj: dict[str, Any] = {"n": 1}
    obj["self"] = obj
    array: list[Any] = [obj]
    array.append(array)
    value = decode(encode(array))
    assert value[0]["self"] is value[0]
    assert value[1] is value


def test_decoded_self_reference() -> None:
    value = decode(bytes.fromhex("0a0b01" + utf8vr("self") + "0a00" + "01"))
    assert value["self"] is value


def test_array_is_registered_before_its_associative_values() -> None:
    # The array takes slot 0 even though its first key is read first.
    value = decode(bytes.fromhex("0901" + utf8vr("me") + "0900" + "01"))
    assert value.assoc["me"] is value


def test_tables_are_shared_by_a_decoder_and_an_encoder() -> None:
    encoder = Encoder()
    first = encoder.encode("abc", {"x": 1})
    second = encoder.encode("abc", {"x": 1})
    # "abc" is string 0, "x" string 1, the anonymous traits traits 0.
    assert second == bytes.fromhex("0600" + "0a01" + "02" + "0401" + "01")
    decoder = Decoder(first + second)
    values = [decoder.read_value() for _ in range(4)]
    assert values == ["abc", {"x": 1}, "abc", {"x": 1}]
    assert decoder.at_end


def test_encode_uses_one_context_per_call() -> None:
    assert encode("abc") == encode("abc")
    assert decode_all(encode("abc", "abc")) == ["abc", "abc"]


def test_string_reference_indices_are_checked() -> None:
    with pytest.raises(AMFError, match="string reference 1"):
        decode_all(bytes.fromhex("0603" + "61" + "0602"))


# ----------------------------------------------------------------- externalizable


def test_custom_externalizable_reader() -> None:
    def read_point(decoder: Decoder) -> tuple[int, int]:
        raw = decoder.read_bytes(2)
        return raw[0], raw[1]

    # [Point(3, 4), reference to it]: the array is slot 0, the point slot 1.
    data = bytes.fromhex("0905" + "01" + "0a07" + utf8vr("Point") + "0304" + "0a02")
    value = Decoder(data, externalizable={"Point": read_point}).read_value()
    assert value == [(3, 4), (3, 4)]
    assert value[0] is value[1]
    with pytest.raises(AMFError, match="Point"):
        decode(data)


def test_externalizable_needs_a_registered_reader() -> None:
    data = bytes.fromhex("0a07" + utf8vr("com.example.Point") + "0304")
    with pytest.raises(AMFError, match="com.example.Point"):
        decode(data)
    decoder = Decoder(data, externalizable={})
    with pytest.raises(AMFError):
        decoder.read_value()


def test_register_externalizable() -> None:
    name = "test.aiortmp.Registered"
    try:
        amf3.register_externalizable(name, lambda d: ("registered", d.read_value()))
        assert decode(bytes.fromhex("0a07" + utf8vr(name) + "0405")) == ("registered", 5)
    finally:
        del amf3.EXTERNALIZABLE_READERS[name]


def test_read_bytes_checks_bounds() -> None:
    decoder = Decoder(b"\x01\x02")
    assert decoder.read_bytes(1) == b"\x01"
    with pytest.raises(AMFError):
        decoder.read_bytes(2)
    with pytest.raises(AMFError):
        decoder.read_bytes(-1)


def test_externalizable_nesting_counts_toward_the_depth() -> None:
    collection = "0a07" + utf8vr("flex.messaging.io.ArrayCollection")
    # Each further ArrayCollection reuses the traits by reference (0x01: traits 0) and
    # wraps the next one.
    data = bytes.fromhex(collection + "0a01" * 100 + "01")
    with pytest.raises(LimitExceededError):
        decode(data)
    assert decode(bytes.fromhex(collection + "0a01" * 3 + "01")) is None


# ----------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        ("090301", ""),  # arrays
        ("0a0b01" + utf8vr("a"), "01"),  # dynamic objects
        ("100300" + "01", ""),  # object vectors
        ("110300" + "0401", ""),  # dictionaries (as values)
    ],
)
def test_depth_limit_boundary(prefix: str, suffix: str) -> None:
    def build(levels: int) -> bytes:
        return bytes.fromhex(prefix * levels + "01" + suffix * levels)

    assert build(64) and decode(build(64)) is not None
    with pytest.raises(LimitExceededError):
        decode(build(65))
    with pytest.raises(LimitExceededError):
        decode(build(3), max_depth=2)


def test_50000_levels_are_refused_quickly() -> None:
    data = b"\x09\x03\x01" * 50_000 + b"\x01"
    started = time.perf_counter()
    with pytest.raises(LimitExceededError):
        decode(data)
    with pytest.raises(LimitExceededError):
        decode(data, max_depth=10**9)
    assert time.perf_counter() - started < 2.0


def test_huge_counts_fail_fast() -> None:
    started = time.perf_counter()
    for hex_bytes in ("09bfffffff01" + "01" * 5, "0dbfffffff00" + "00" * 5, "11bfffffff00"):
        with pytest.raises(AMFError):
            decode(bytes.fromhex(hex_bytes))
    assert time.perf_counter() - started < 0.1


# ----------------------------------------------------------------- encoding


def test_anonymous_object_traits_are_referenced() -> None:
    data = encode([{"a": 1}, {"b": 2}])
    first = "0a0b01" + utf8vr("a") + "0401" + "01"
    second = "0a01" + utf8vr("b") + "0402" + "01"
    assert data == bytes.fromhex("0905" + "01" + first + second)


def test_ecma_array_becomes_an_associative_array() -> None:
    assert encode(ECMAArray(k=True)) == bytes.fromhex("0901" + utf8vr("k") + "03" + "01")
    assert same(decode(encode(ECMAArray(k=True))), AMF3Array(assoc={"k": True}))


def test_amf3_value_wrapper_is_transparent() -> None:
    assert encode(AMF3Value(value=[1])) == encode([1])


def test_tuple_and_bytearray() -> None:
    assert encode((1, 2)) == encode([1, 2])
    assert encode(bytearray(b"\x01")) == encode(b"\x01")
    assert type(decode(encode(bytearray(b"\x01")))) is bytes


def test_naive_datetime_is_utc() -> None:
    assert encode(datetime(2020, 1, 1)) == encode(datetime(2020, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        {1: "non-str key"},
        {"": "empty dynamic key"},
        AMF3Array(assoc={"": 1}),
        ECMAArray({"": 1}),
        TypedObject(class_name="C", properties={1: 2}),  # type: ignore[dict-item]
        "\ud800",
        10**400,
        Vector(kind=VectorKind.INT, items=[2**31]),
        Vector(kind=VectorKind.UINT, items=[-1]),
        Vector(kind=VectorKind.INT, items=["x"]),
        Vector(kind=VectorKind.DOUBLE, items=["x"]),
        Vector(kind=99, items=[]),  # type: ignore[arg-type]
        memoryview(b"x"),
    ],
    ids=repr,
)
def test_unencodable_values(value: Any) -> None:
    with pytest.raises(AMFEncodeError):
        encode(value)


def test_very_deep_values_are_refused_on_encode() -> None:
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(AMFEncodeError):
        encode(deep)


def test_typed_object_without_class_name_decodes_as_dict() -> None:
    assert same(decode(encode(TypedObject(class_name="", properties={"a": 1}))), {"a": 1})


# ----------------------------------------------------------------- properties

MS_DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))
KEYS = st.text(min_size=1, max_size=8)

LEAVES = st.one_of(
    st.none(),
    st.just(UNDEFINED),
    st.booleans(),
    st.integers(-(2**28), 2**28 - 1),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False),
    st.text(),
    st.text(max_size=20).map(XMLDocument),
    st.text(max_size=20).map(XML),
    MS_DATETIMES,
    st.binary(max_size=20),
    st.builds(
        lambda items, fixed: Vector(kind=VectorKind.INT, items=items, fixed=fixed),
        st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5),
        st.booleans(),
    ),
    st.builds(
        lambda items: Vector(kind=VectorKind.UINT, items=items),
        st.lists(st.integers(0, 2**32 - 1), max_size=5),
    ),
    st.builds(
        lambda items: Vector(kind=VectorKind.DOUBLE, items=items),
        st.lists(st.floats(allow_nan=False), max_size=5),
    ),
)


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4).map(ECMAArray),
        st.builds(
            lambda dense, assoc: AMF3Array(dense=dense, assoc=assoc),
            st.lists(children, max_size=3),
            st.dictionaries(KEYS, children, max_size=3),
        ),
        st.builds(
            lambda name, props: TypedObject(class_name=name, properties=props),
            st.sampled_from(["A", "B", "com.example.C"]),
            st.dictionaries(st.sampled_from(["x", "y", "z", ""]), children, max_size=3),
        ),
        st.builds(
            lambda items, name: Vector(kind=VectorKind.OBJECT, items=items, class_name=name),
            st.lists(children, max_size=3),
            st.text(max_size=5),
        ),
        st.builds(
            lambda items, weak: Dictionary(items=items, weak_keys=weak),
            st.lists(st.tuples(children, children), max_size=3),
            st.booleans(),
        ),
    )


VALUES = st.recursive(LEAVES, extend, max_leaves=12)


def expected(value: Any) -> Any:
    """What decode(encode(value)) gives."""
    if isinstance(value, bool) or value is None or value is UNDEFINED:
        return value
    if isinstance(value, int):
        return value if -(2**28) <= value < 2**28 else float(value)
    if isinstance(value, list | tuple):
        return [expected(v) for v in value]
    if isinstance(value, AMF3Array | ECMAArray):
        dense, assoc = (value.dense, value.assoc) if isinstance(value, AMF3Array) else ([], value)
        if not assoc:
            return [expected(v) for v in dense]
        return AMF3Array(
            dense=[expected(v) for v in dense], assoc={k: expected(v) for k, v in assoc.items()}
        )
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    if isinstance(value, TypedObject):
        return TypedObject(
            class_name=value.class_name,
            properties={k: expected(v) for k, v in value.properties.items()},
        )
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, Vector):
        return Vector(
            kind=value.kind,
            items=[expected(v) for v in value.items]
            if value.kind is VectorKind.OBJECT
            else list(value.items),
            fixed=value.fixed,
            class_name=value.class_name if value.kind is VectorKind.OBJECT else "",
        )
    if isinstance(value, Dictionary):
        return Dictionary(
            items=[(expected(k), expected(v)) for k, v in value.items], weak_keys=value.weak_keys
        )
    return value


@given(VALUES)
@settings(max_examples=300)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    assert same(decode(data), expected(value))
    assert encode(decode(data)) == encode(expected(value))


@given(st.lists(VALUES, max_size=4))
def test_round_trip_sequence_shares_tables(values: list[Any]) -> None:
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
    for name in amf3.__all__:
        assert hasattr(amf3, name), name
