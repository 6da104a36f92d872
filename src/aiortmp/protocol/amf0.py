"""AMF0 encoder and decoder (Adobe "Action Message Format -- AMF 0", December 2007).

AMF0 carries every RTMP command (message type 20, RTMP 1.0 §7.1.1) and data message
(type 18, ``@setDataFrame``/``onMetaData``), so :class:`Decoder` is on the hot path. It
reads with ``struct.unpack_from`` straight off one :class:`memoryview` and keeps a
single integer offset: no per-value slicing copies, and strings are decoded from the
view in place.

Python mapping (both directions unless noted):

========================  ===================================================
Python                    AMF0
========================  ===================================================
``bool``                  boolean (§2.3)
``int``, ``float``        number (§2.2); decoding always gives ``float``
``str``                   string (§2.4), or long string (§2.14) when its UTF-8
                          form exceeds 65535 bytes
``None``                  null (§2.7)
:data:`UNDEFINED`         undefined (§2.8)
``dict`` (``str`` keys)   anonymous object (§2.5)
:class:`ECMAArray`        ECMA array (§2.10)
``list``, ``tuple``       strict array (§2.12); decoding gives ``list``
``datetime``              date (§2.13); naive means UTC, decoding gives an
                          aware UTC ``datetime``
:class:`XMLDocument`      XML document (§2.17)
:class:`TypedObject`      typed object (§2.18)
:class:`AMF3Value`        avmplus-object (§3.1): the wrapped value in AMF3;
                          decoding returns the AMF3 value itself, unwrapped
========================  ===================================================

The reference type (§2.9) is decoded but never emitted: FFmpeg, librtmp and most
servers do not understand it, so a repeated container is written again in full and a
cyclic one is refused with :class:`~aiortmp.protocol.errors.AMFEncodeError`.

Malformed input raises :class:`~aiortmp.protocol.errors.AMFError`; nesting deeper than
``max_depth`` raises :class:`~aiortmp.protocol.errors.LimitExceededError`, and so do
references that would make a small body stand for a huge value (see
:data:`DEFAULT_MAX_EXPANSION`). No other exception escapes the decoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final, final

from aiortmp.protocol.errors import AMFEncodeError, AMFError, LimitExceededError

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiortmp.protocol import amf3

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_EXPANSION",
    "UNDEFINED",
    "AMF3Value",
    "Decoder",
    "ECMAArray",
    "Marker",
    "TypedObject",
    "Undefined",
    "XMLDocument",
    "datetime_to_ms",
    "decode",
    "decode_all",
    "encode",
    "ms_to_datetime",
]

#: Default limit on nested containers (objects, arrays, typed objects, AMF3 values).
DEFAULT_MAX_DEPTH: Final = 64

#: Default limit, in bytes, on what references may add to a body. A reference (AMF0 §2.9,
#: AMF3 §2.1) costs 2 or 3 bytes and stands for a whole earlier value; an array of two
#: references to the previous array, repeated 40 times, is 500 bytes that stand for 2**40
#: values, which re-encoding, logging or JSON would try to write out. Each reference is
#: charged the size of what it stands for (its encoded bytes plus the expansion of the
#: references inside it); the sum over a body may not exceed this.
DEFAULT_MAX_EXPANSION: Final = 1024 * 1024


class Marker:
    """AMF0 type markers (AMF0 §2.1)."""

    NUMBER: Final = 0x00
    BOOLEAN: Final = 0x01
    STRING: Final = 0x02
    OBJECT: Final = 0x03
    MOVIECLIP: Final = 0x04
    NULL: Final = 0x05
    UNDEFINED: Final = 0x06
    REFERENCE: Final = 0x07
    ECMA_ARRAY: Final = 0x08
    OBJECT_END: Final = 0x09
    STRICT_ARRAY: Final = 0x0A
    DATE: Final = 0x0B
    LONG_STRING: Final = 0x0C
    UNSUPPORTED: Final = 0x0D
    RECORDSET: Final = 0x0E
    XML_DOCUMENT: Final = 0x0F
    TYPED_OBJECT: Final = 0x10
    AVMPLUS_OBJECT: Final = 0x11


# --------------------------------------------------------------------------- values


@final
class Undefined:
    """The ActionScript ``undefined`` value (AMF0 §2.8, AMF3 §3.2).

    There is exactly one instance, :data:`UNDEFINED`. It is falsy, so
    ``if value:`` treats it like ``None``; test ``value is UNDEFINED`` to tell them apart.
    """

    __slots__ = ()
    _instance: ClassVar[Undefined | None] = None

    def __new__(cls) -> Undefined:
        # A singleton, so identity tests hold even after copy/pickle round trips.
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __reduce__(self) -> str:
        return "UNDEFINED"

    def __copy__(self) -> Undefined:
        return self

    def __deepcopy__(self, memo: object) -> Undefined:
        return self


#: The single :class:`Undefined` instance.
UNDEFINED: Final[Undefined] = Undefined()


class ECMAArray(dict[str, Any]):
    """An ECMA (associative) array (AMF0 §2.10).

    A ``dict`` subclass, so it compares equal to a plain ``dict`` with the same items;
    its type only chooses the wire form. FLV ``onMetaData`` is conventionally sent as
    one. In AMF3 it is written as an array with only an associative part (AMF3 §3.11).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ECMAArray({dict.__repr__(self)})"


class XMLDocument(str):
    """An XML document string (AMF0 §2.17, AMF3 §3.9 XMLDocument).

    A ``str`` subclass: its type only chooses the wire form.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"XMLDocument({str.__repr__(self)})"


@dataclass(frozen=True, kw_only=True, slots=True)
class TypedObject:
    """An instance of a named ActionScript class (AMF0 §2.18, AMF3 §3.12).

    Attributes:
        class_name: the registered class alias, e.g. ``"flex.messaging.messages.RemotingMessage"``.
        properties: the members, in wire order. In AMF3 they are written as sealed
            members of the class traits.
    """

    class_name: str
    properties: dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class AMF3Value:
    """Wraps a value that :func:`encode` writes in AMF3 after the avmplus marker (AMF0 §3.1).

    Decoding does not produce this wrapper: the AMF3 value is returned directly.

    Attributes:
        value: any value :func:`aiortmp.protocol.amf3.encode` accepts.
    """

    value: Any


# --------------------------------------------------------------------------- decoding

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DOUBLE = struct.Struct(">d")
_DATE = struct.Struct(">dh")
_U16_unpack = _U16.unpack_from
_U32_unpack = _U32.unpack_from
_DOUBLE_unpack = _DOUBLE.unpack_from

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)

_REJECTED_MARKERS: Final = {
    Marker.MOVIECLIP: "movieclip marker 0x04 (AMF0 §2.6: reserved, not supported)",
    Marker.OBJECT_END: "object-end marker 0x09 outside an object (AMF0 §2.11)",
    Marker.UNSUPPORTED: "unsupported marker 0x0D (AMF0 §2.15)",
    Marker.RECORDSET: "recordset marker 0x0E (AMF0 §2.16: reserved, not supported)",
}


def _as_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def ms_to_datetime(ms: float) -> datetime:
    """Convert an AMF date (milliseconds since the Unix epoch, UTC) to an aware datetime.

    Args:
        ms: milliseconds since 1970-01-01T00:00:00Z, as sent on the wire.

    Returns:
        An aware ``datetime`` in UTC.

    Raises:
        AMFError: NaN, infinite, or outside ``datetime``'s years 1–9999.
    """
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, ValueError) as exc:
        raise AMFError(f"AMF date {ms!r} ms is not a representable datetime") from exc


def datetime_to_ms(value: datetime) -> float:
    """Convert a datetime to AMF date milliseconds since the Unix epoch (AMF0 §2.13).

    Args:
        value: the datetime; a naive one is taken to be UTC.

    Returns:
        Milliseconds since 1970-01-01T00:00:00Z (fractional below one millisecond).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) / _ONE_MS


class Decoder:
    """Reads AMF0 values one after another from one buffer (one message body).

    The reference table (AMF0 §2.9) and the AMF3 reference tables used after
    avmplus markers (AMF0 §3.1) are shared by every value read from the same decoder,
    as they are by every value of one message body.

    After an exception the position is reset to the start of the value that failed; the
    reference tables may hold values from the failed read, so do not keep decoding.

    Args:
        data: the encoded bytes. A ``bytearray`` cannot be resized while the decoder
            holds a view of it.
        max_depth: maximum number of nested containers (objects, ECMA arrays, strict
            arrays, typed objects, and AMF3 containers).
        max_expansion: maximum number of bytes that references may add to the body when
            its values are written out in full (see :data:`DEFAULT_MAX_EXPANSION`).
    """

    __slots__ = (
        "_view",
        "_pos",
        "_end",
        "_max_depth",
        "_depth",
        "_refs",
        "_amf3",
        "_weights",
        "_expansion",
        "_max_expansion",
    )

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_expansion: int = DEFAULT_MAX_EXPANSION,
    ) -> None:
        self._view = _as_view(data)
        self._pos = 0
        self._end = len(self._view)
        self._max_depth = max_depth
        self._depth = 0
        self._refs: list[Any] = []
        self._amf3: amf3.Decoder | None = None
        # Reference table index -> bytes the value stands for, once it is complete.
        self._weights: dict[int, int] = {}
        self._expansion = 0
        self._max_expansion = max_expansion

    @property
    def position(self) -> int:
        """Offset in bytes of the next value to read."""
        return self._pos

    @property
    def at_end(self) -> bool:
        """True when every byte of the buffer has been consumed."""
        return self._pos >= self._end

    def read_value(self) -> Any:
        """Decode the next value.

        Returns:
            The decoded value (see the module docstring for the mapping).

        Raises:
            AMFError: the bytes are not valid AMF0 (truncated, unknown or unsupported
                marker, invalid UTF-8, bad object end, reference out of range, ...).
            LimitExceededError: the value nests deeper than ``max_depth``, or its
                references expand the body by more than ``max_expansion`` bytes.
        """
        start = self._pos
        depth = self._depth
        try:
            return self._read()
        except (struct.error, IndexError) as exc:
            self._pos = start
            raise AMFError(f"truncated AMF0 value starting at offset {start}") from exc
        except UnicodeDecodeError as exc:
            self._pos = start
            raise AMFError(f"invalid UTF-8 in AMF0 value at offset {start}: {exc.reason}") from exc
        except RecursionError as exc:
            # Only reachable with a max_depth far above the default.
            self._pos = start
            raise LimitExceededError("AMF0 value nests deeper than the Python stack") from exc
        except (AMFError, LimitExceededError):
            self._pos = start
            raise
        finally:
            self._depth = depth

    # The private readers below leave truncation to IndexError/struct.error, which
    # read_value() turns into AMFError: checking every fixed-size read by hand would
    # cost more than the zero-cost try block.

    def _read(self) -> Any:
        pos = self._pos
        marker = self._view[pos]
        self._pos = pos + 1
        if marker == Marker.STRING:
            return self._read_utf8(2)
        if marker == Marker.NUMBER:
            self._pos = pos + 9
            return _DOUBLE_unpack(self._view, pos + 1)[0]
        if marker < len(_READERS):
            reader = _READERS[marker]
            if reader is not None:
                refs = self._refs
                slot = len(refs)
                expansion = self._expansion
                value = reader(self)
                if len(refs) > slot:
                    # A container takes its table slot before its members do: record
                    # what a later reference to it stands for.
                    self._weights[slot] = self._pos - pos + self._expansion - expansion
                return value
        message = _REJECTED_MARKERS.get(marker)
        if message is None:
            message = f"unknown AMF0 type marker 0x{marker:02x}"
        raise AMFError(f"{message} at offset {pos}")

    def _read_utf8(self, size_bytes: int) -> str:
        pos = self._pos
        if size_bytes == 2:
            (length,) = _U16_unpack(self._view, pos)
        else:
            (length,) = _U32_unpack(self._view, pos)
        start = pos + size_bytes
        end = start + length
        if end > self._end:
            raise AMFError(
                f"AMF0 string of {length} bytes at offset {start} overruns the "
                f"{self._end}-byte buffer"
            )
        self._pos = end
        return str(self._view[start:end], "utf-8")

    def _expand(self, size: int) -> None:
        expansion = self._expansion + size
        if expansion > self._max_expansion:
            raise LimitExceededError(
                f"AMF references expand the body by more than max_expansion="
                f"{self._max_expansion} bytes"
            )
        self._expansion = expansion

    def _enter(self) -> None:
        depth = self._depth + 1
        if depth > self._max_depth:
            raise LimitExceededError(f"AMF value nests deeper than max_depth={self._max_depth}")
        self._depth = depth

    def _read_properties(self, target: dict[str, Any]) -> None:
        # AMF0 §2.5: object-property = (UTF-8 value-type) | (UTF-8-empty object-end-marker)
        view = self._view
        while True:
            pos = self._pos
            (length,) = _U16_unpack(view, pos)
            pos += 2
            if length == 0:
                if view[pos] != Marker.OBJECT_END:
                    raise AMFError(
                        f"empty property name not followed by the object-end marker at offset {pos}"
                    )
                self._pos = pos + 1
                return
            end = pos + length
            if end > self._end:
                raise AMFError(f"AMF0 property name at offset {pos} overruns the buffer")
            key = str(view[pos:end], "utf-8")
            self._pos = end
            target[key] = self._read()

    def _read_boolean(self) -> bool:
        pos = self._pos
        self._pos = pos + 1
        # AMF0 §2.3: "a zero byte value denotes false while a non-zero byte value
        # (typically 1) denotes true".
        return self._view[pos] != 0

    def _read_object(self) -> dict[str, Any]:
        self._enter()
        obj: dict[str, Any] = {}
        self._refs.append(obj)
        self._read_properties(obj)
        self._depth -= 1
        return obj

    def _read_null(self) -> None:
        return None

    def _read_undefined(self) -> Undefined:
        return UNDEFINED

    def _read_reference(self) -> Any:
        pos = self._pos
        (index,) = _U16_unpack(self._view, pos)
        self._pos = pos + 2
        if index >= len(self._refs):
            raise AMFError(
                f"AMF0 reference {index} at offset {pos} but only {len(self._refs)} "
                "complex values precede it"
            )
        # A reference to a container still being read (a cycle) adds nothing here;
        # encoders refuse cycles (AMFEncodeError) instead of writing them forever.
        self._expand(self._weights.get(index, 0))
        return self._refs[index]

    def _read_ecma_array(self) -> ECMAArray:
        self._enter()
        # The associative-count is advisory: FFmpeg writes 0 for onMetaData, so the
        # object-end marker, not the count, ends the array.
        self._pos += 4
        if self._pos > self._end:
            raise AMFError("truncated AMF0 ECMA array count")
        array = ECMAArray()
        self._refs.append(array)
        self._read_properties(array)
        self._depth -= 1
        return array

    def _read_strict_array(self) -> list[Any]:
        self._enter()
        pos = self._pos
        (count,) = _U32_unpack(self._view, pos)
        self._pos = pos + 4
        # Every element takes at least its one-byte marker: reject impossible counts
        # before looping, and never allocate from the count.
        if count > self._end - self._pos:
            raise AMFError(
                f"AMF0 strict array at offset {pos} claims {count} elements but only "
                f"{self._end - self._pos} bytes remain"
            )
        items: list[Any] = []
        self._refs.append(items)
        append = items.append
        read = self._read
        for _ in range(count):
            append(read())
        self._depth -= 1
        return items

    def _read_date(self) -> datetime:
        pos = self._pos
        # AMF0 §2.13: time-zone = S16 ; reserved, not supported should be set to 0x0000
        ms, _timezone = _DATE.unpack_from(self._view, pos)
        self._pos = pos + 10
        return ms_to_datetime(ms)

    def _read_long_string(self) -> str:
        return self._read_utf8(4)

    def _read_xml_document(self) -> XMLDocument:
        return XMLDocument(self._read_utf8(4))

    def _read_typed_object(self) -> TypedObject:
        self._enter()
        class_name = self._read_utf8(2)
        obj = TypedObject(class_name=class_name, properties={})
        self._refs.append(obj)
        self._read_properties(obj.properties)
        self._depth -= 1
        return obj

    def _read_avmplus(self) -> Any:
        # AMF0 §3.1: the following value is AMF3; the switch is not sticky (E-RTMP v2,
        # "AMF3-encoded Historical Specification Clarification"). One AMF3 context
        # serves the whole message body, as the AMF3 reference tables are per body.
        from aiortmp.protocol import amf3

        decoder = self._amf3
        if decoder is None:
            decoder = self._amf3 = amf3.Decoder(
                self._view, max_depth=self._max_depth, max_expansion=self._max_expansion
            )
        before = decoder._expansion
        value, self._pos = decoder._read_nested(self._pos, self._depth)
        # The AMF3 references count against this body too (and so weigh on any AMF0
        # reference to a container holding this value).
        self._expand(decoder._expansion - before)
        return value


_READERS: tuple[Callable[[Decoder], Any] | None, ...] = (
    None,  # 0x00 number: inlined in Decoder._read
    Decoder._read_boolean,
    None,  # 0x02 string: inlined in Decoder._read
    Decoder._read_object,
    None,  # 0x04 movieclip
    Decoder._read_null,
    Decoder._read_undefined,
    Decoder._read_reference,
    Decoder._read_ecma_array,
    None,  # 0x09 object end
    Decoder._read_strict_array,
    Decoder._read_date,
    Decoder._read_long_string,
    None,  # 0x0D unsupported
    None,  # 0x0E recordset
    Decoder._read_xml_document,
    Decoder._read_typed_object,
    Decoder._read_avmplus,
)


def decode(data: bytes | bytearray | memoryview, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode exactly one AMF0 value.

    Args:
        data: the encoded value, with nothing after it.
        max_depth: maximum number of nested containers.

    Returns:
        The decoded value.

    Raises:
        AMFError: the bytes are not one valid AMF0 value (including trailing bytes).
        LimitExceededError: the value nests deeper than ``max_depth``, or references
            expand it too much (:data:`~aiortmp.protocol.amf0.DEFAULT_MAX_EXPANSION`).
    """
    decoder = Decoder(data, max_depth=max_depth)
    value = decoder.read_value()
    if not decoder.at_end:
        raise AMFError(
            f"{decoder._end - decoder.position} trailing bytes after the AMF0 value "
            f"at offset {decoder.position}"
        )
    return value


def decode_all(
    data: bytes | bytearray | memoryview, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> list[Any]:
    """Decode a sequence of AMF0 values, e.g. a command message body (RTMP 1.0 §7.1.1).

    Args:
        data: the encoded values back to back; empty input gives an empty list.
        max_depth: maximum number of nested containers, per value.

    Returns:
        The decoded values in order.

    Raises:
        AMFError: the bytes are not a sequence of valid AMF0 values.
        LimitExceededError: a value nests deeper than ``max_depth``, or references
            expand the body too much (:data:`~aiortmp.protocol.amf0.DEFAULT_MAX_EXPANSION`).
    """
    decoder = Decoder(data, max_depth=max_depth)
    values: list[Any] = []
    while not decoder.at_end:
        values.append(decoder.read_value())
    return values


# --------------------------------------------------------------------------- encoding

_NUMBER = struct.Struct(">Bd")
_DATE_VALUE = struct.Struct(">Bdh")
_MARKER_U16 = struct.Struct(">BH")
_MARKER_U32 = struct.Struct(">BI")
_OBJECT_END: Final = b"\x00\x00\x09"


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AMFEncodeError(f"string is not encodable as UTF-8: {exc.reason}") from exc


class _Encoder:
    """Writes AMF0 values into one buffer; one instance per message body."""

    __slots__ = ("out", "_active", "_amf3")

    def __init__(self) -> None:
        self.out = bytearray()
        # ids of the containers being written, to refuse cycles (references are never
        # emitted, so a cycle would recurse forever).
        self._active: set[int] = set()
        self._amf3: amf3.Encoder | None = None

    def write(self, value: Any) -> None:
        out = self.out
        if value is None:
            out.append(Marker.NULL)
        elif value is True:
            out += b"\x01\x01"
        elif value is False:
            out += b"\x01\x00"
        elif isinstance(value, str):
            if isinstance(value, XMLDocument):
                data = _utf8(value)
                self._check_u32(len(data), "XML document")
                out += _MARKER_U32.pack(Marker.XML_DOCUMENT, len(data))
            else:
                data = _utf8(value)
                if len(data) <= 0xFFFF:
                    out += _MARKER_U16.pack(Marker.STRING, len(data))
                else:
                    self._check_u32(len(data), "long string")
                    out += _MARKER_U32.pack(Marker.LONG_STRING, len(data))
            out += data
        elif isinstance(value, (int, float)):
            try:
                out += _NUMBER.pack(Marker.NUMBER, value)
            except (OverflowError, struct.error) as exc:
                raise AMFEncodeError(f"{value!r} does not fit an AMF0 number (double)") from exc
        elif isinstance(value, dict):
            self._enter(value)
            if isinstance(value, ECMAArray):
                self._check_u32(len(value), "ECMA array")
                out += _MARKER_U32.pack(Marker.ECMA_ARRAY, len(value))
            else:
                out.append(Marker.OBJECT)
            self._write_properties(value)
            self._active.discard(id(value))
        elif isinstance(value, (list, tuple)):
            self._enter(value)
            self._check_u32(len(value), "strict array")
            out += _MARKER_U32.pack(Marker.STRICT_ARRAY, len(value))
            for item in value:
                self.write(item)
            self._active.discard(id(value))
        elif isinstance(value, TypedObject):
            self._enter(value)
            out.append(Marker.TYPED_OBJECT)
            self._write_name(value.class_name, "class name")
            self._write_properties(value.properties)
            self._active.discard(id(value))
        elif isinstance(value, datetime):
            out += _DATE_VALUE.pack(Marker.DATE, datetime_to_ms(value), 0)
        elif value is UNDEFINED:
            out.append(Marker.UNDEFINED)
        elif isinstance(value, AMF3Value):
            from aiortmp.protocol import amf3

            if self._amf3 is None:
                self._amf3 = amf3.Encoder()
            out.append(Marker.AVMPLUS_OBJECT)
            self._amf3.write_into(out, value.value)
        else:
            raise AMFEncodeError(f"{type(value).__name__} has no AMF0 representation")

    def _enter(self, container: object) -> None:
        key = id(container)
        if key in self._active:
            raise AMFEncodeError(
                f"cyclic {type(container).__name__}: AMF0 references are not emitted"
            )
        self._active.add(key)

    @staticmethod
    def _check_u32(size: int, what: str) -> None:
        if size > 0xFFFFFFFF:
            raise AMFEncodeError(f"AMF0 {what} of {size} exceeds the U32 length field")

    def _write_name(self, name: object, what: str) -> None:
        if not isinstance(name, str):
            raise AMFEncodeError(f"AMF0 {what} must be str, not {type(name).__name__}")
        data = _utf8(name)
        if len(data) > 0xFFFF:
            raise AMFEncodeError(f"AMF0 {what} of {len(data)} UTF-8 bytes exceeds 65535")
        self.out += _U16.pack(len(data))
        self.out += data

    def _write_properties(self, properties: dict[str, Any]) -> None:
        for key, item in properties.items():
            if not key:
                # An empty name is the object-end sequence (AMF0 §2.5), so it would end
                # the object early in every decoder, FFmpeg's included.
                raise AMFEncodeError("an AMF0 property name cannot be empty")
            self._write_name(key, "property name")
            self.write(item)
        self.out += _OBJECT_END


def encode(*values: Any) -> bytes:
    """Encode values as back-to-back AMF0 (one message body).

    Values wrapped in :class:`AMF3Value` share one AMF3 encoding context (reference
    tables), as the AMF3 reference tables are per message body.

    Args:
        *values: the values, mapped as described in the module docstring.

    Returns:
        The encoded bytes.

    Raises:
        AMFEncodeError: a value (or a nested one) has no AMF0 representation: an
            unsupported type, a non-``str`` or empty property name, a name longer than
            65535 UTF-8 bytes, a string that is not valid Unicode, an int too large for a
            double, or a cyclic container.
    """
    encoder = _Encoder()
    try:
        for value in values:
            encoder.write(value)
    except RecursionError as exc:
        raise AMFEncodeError("value nests too deeply to encode") from exc
    return bytes(encoder.out)
