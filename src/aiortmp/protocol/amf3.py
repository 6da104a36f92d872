"""AMF3 encoder and decoder (Adobe "Action Message Format -- AMF 3", January 2013).

AMF3 reaches RTMP in message types 15/16/17 and after the AMF0 avmplus marker
(AMF0 §3.1). Like :mod:`aiortmp.protocol.amf0`, the decoder reads with
``struct.unpack_from`` off one :class:`memoryview` and a single offset.

Python mapping (both directions unless noted):

==============================  ====================================================
Python                          AMF3
==============================  ====================================================
:data:`~.amf0.UNDEFINED`        undefined (§3.2)
``None``                        null (§3.3)
``bool``                        false / true (§3.4, §3.5)
``int``                         integer (§3.6) when it fits the signed 29-bit range
                                [-2**28, 2**28 - 1], else double
``float``                       double (§3.7); integer decodes to ``int``
``str``                         String (§3.8)
:class:`~.amf0.XMLDocument`     XMLDocument (§3.9)
``datetime``                    Date (§3.10); naive means UTC, decoding gives an
                                aware UTC ``datetime``
``list``, ``tuple``             Array (§3.11) with only a dense part; decoding an
                                array without associative part gives ``list``
:class:`AMF3Array`              Array with dense and associative parts
:class:`~.amf0.ECMAArray`       Array with only an associative part (decodes as
                                :class:`AMF3Array`)
``dict`` (``str`` keys)         Object (§3.12), anonymous and dynamic
:class:`~.amf0.TypedObject`     Object with a class name; its properties are the
                                sealed members (decoding merges sealed and dynamic
                                members)
:class:`XML`                    XML (§3.13)
``bytes``, ``bytearray``        ByteArray (§3.14); decoding gives ``bytes``
:class:`Vector`                 Vector int/uint/double/object (§3.15)
:class:`Dictionary`             Dictionary (§3.16)
==============================  ====================================================

Reference tables (AMF3 §2.1): strings, objects and traits are each numbered in the
order they first appear, and a repeat is sent as an index into the table. The tables
belong to one encoding context; :func:`encode` and :func:`decode_all` use one context
for all their values (the tables are per message body), and :class:`Encoder` and
:class:`Decoder` keep theirs for their whole life. The encoder emits string, object
and trait references; object identity (``is``) decides object references, so a
cyclic container graph encodes fine.

Externalizable classes (traits flag, §3.12) carry class-specific bytes that only the
class knows how to read; they decode only when a reader is registered with
:func:`register_externalizable` (``flex.messaging.io.ArrayCollection`` and
``flex.messaging.io.ObjectProxy`` are, and decode to the one value they wrap).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from aiortmp.protocol.amf0 import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_EXPANSION,
    UNDEFINED,
    AMF3Value,
    ECMAArray,
    TypedObject,
    XMLDocument,
    _as_view,
    datetime_to_ms,
    ms_to_datetime,
)
from aiortmp.protocol.errors import AMFEncodeError, AMFError, LimitExceededError

__all__ = [
    "EXTERNALIZABLE_READERS",
    "XML",
    "AMF3Array",
    "Decoder",
    "Dictionary",
    "Encoder",
    "ExternalizableReader",
    "Marker",
    "Vector",
    "VectorKind",
    "decode",
    "decode_all",
    "encode",
    "register_externalizable",
]


class Marker:
    """AMF3 type markers (AMF3 §3.1)."""

    UNDEFINED: Final = 0x00
    NULL: Final = 0x01
    FALSE: Final = 0x02
    TRUE: Final = 0x03
    INTEGER: Final = 0x04
    DOUBLE: Final = 0x05
    STRING: Final = 0x06
    XML_DOCUMENT: Final = 0x07
    DATE: Final = 0x08
    ARRAY: Final = 0x09
    OBJECT: Final = 0x0A
    XML: Final = 0x0B
    BYTE_ARRAY: Final = 0x0C
    VECTOR_INT: Final = 0x0D
    VECTOR_UINT: Final = 0x0E
    VECTOR_DOUBLE: Final = 0x0F
    VECTOR_OBJECT: Final = 0x10
    DICTIONARY: Final = 0x11


# --------------------------------------------------------------------------- values


class XML(str):
    """An E4X XML value (AMF3 §3.13), as opposed to the legacy XMLDocument (§3.9).

    A ``str`` subclass: its type only chooses the wire form.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"XML({str.__repr__(self)})"


class VectorKind(enum.IntEnum):
    """The element type of a :class:`Vector`; the values are the type markers (AMF3 §3.15)."""

    INT = 0x0D
    UINT = 0x0E
    DOUBLE = 0x0F
    OBJECT = 0x10


@dataclass(frozen=True, kw_only=True, slots=True)
class Vector:
    """An ActionScript ``Vector.<T>`` (AMF3 §3.15).

    Attributes:
        kind: the element type.
        items: the elements: ints in [-2**31, 2**31 - 1] for ``INT``, ints in
            [0, 2**32 - 1] for ``UINT``, floats for ``DOUBLE``, any AMF3 values for
            ``OBJECT``.
        fixed: True for a fixed-length vector.
        class_name: the element type name of an ``OBJECT`` vector, as sent (empty when
            the sender gave none); ignored for the other kinds.
    """

    kind: VectorKind
    items: list[Any]
    fixed: bool = False
    class_name: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AMF3Array:
    """An AMF3 Array with an associative part (AMF3 §3.11).

    Arrays with only a dense part decode as ``list``.

    Attributes:
        dense: the dense part, indices 0..n-1.
        assoc: the associative part (string keys, none empty).
    """

    dense: list[Any] = field(default_factory=list)
    assoc: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Dictionary:
    """An ActionScript ``flash.utils.Dictionary`` (AMF3 §3.16).

    Keys may be any AMF3 value, including unhashable ones (objects), so the entries are
    kept as a list of pairs in wire order.

    Attributes:
        items: ``(key, value)`` pairs.
        weak_keys: True when the dictionary holds its keys weakly.
    """

    items: list[tuple[Any, Any]] = field(default_factory=list)
    weak_keys: bool = False


#: Reads the custom body of an externalizable object (AMF3 §3.12) from the decoder,
#: with :meth:`Decoder.read_value` and :meth:`Decoder.read_bytes`, and returns its value.
ExternalizableReader = Callable[["Decoder"], Any]


def _read_wrapped_value(decoder: Decoder) -> Any:
    # ArrayCollection and ObjectProxy write their source with writeObject(): one value.
    return decoder.read_value()


#: The externalizable classes a :class:`Decoder` understands by default, by class name.
EXTERNALIZABLE_READERS: dict[str, ExternalizableReader] = {
    "flex.messaging.io.ArrayCollection": _read_wrapped_value,
    "flex.messaging.io.ObjectProxy": _read_wrapped_value,
}


def register_externalizable(class_name: str, reader: ExternalizableReader) -> None:
    """Teach every decoder using the default registry to read an externalizable class.

    Args:
        class_name: the class alias as sent in the traits, e.g. ``"com.example.Point"``.
        reader: reads the class's custom data from the decoder and returns the value.
    """
    EXTERNALIZABLE_READERS[class_name] = reader


# --------------------------------------------------------------------------- decoding

_DOUBLE = struct.Struct(">d")
_DOUBLE_unpack = _DOUBLE.unpack_from

_INT29_MIN: Final = -(1 << 28)
_INT29_MAX: Final = (1 << 28) - 1


@dataclass(frozen=True, slots=True)
class _Traits:
    class_name: str
    members: tuple[str, ...]
    dynamic: bool
    externalizable: bool


class _Pending:
    """Marks an object-table slot whose externalizable value is still being read."""

    __slots__ = ()


_PENDING: Final = _Pending()


class Decoder:
    """Reads AMF3 values one after another from one buffer (one message body).

    The string, object and traits reference tables (AMF3 §2.1) persist across
    :meth:`read_value` calls. They only grow with decoded values, so their size is
    bounded by the input; every reference index is checked against them.

    After an exception the position is reset to the start of the value that failed; the
    reference tables may hold values from the failed read, so do not keep decoding.

    Args:
        data: the encoded bytes. A ``bytearray`` cannot be resized while the decoder
            holds a view of it.
        max_depth: maximum number of nested containers (arrays, objects, object
            vectors, dictionaries, externalizable objects).
        externalizable: readers for externalizable classes by class name; defaults
            to the live :data:`EXTERNALIZABLE_READERS` registry.
        max_expansion: maximum number of bytes that string, object and traits references
            may add to the body when its values are written out in full (see
            :data:`~aiortmp.protocol.amf0.DEFAULT_MAX_EXPANSION`).
    """

    __slots__ = (
        "_view",
        "_pos",
        "_end",
        "_max_depth",
        "_depth",
        "_strings",
        "_objects",
        "_traits",
        "_externalizable",
        "_weights",
        "_expansion",
        "_max_expansion",
    )

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        externalizable: Mapping[str, ExternalizableReader] | None = None,
        max_expansion: int = DEFAULT_MAX_EXPANSION,
    ) -> None:
        self._view = _as_view(data)
        self._pos = 0
        self._end = len(self._view)
        self._max_depth = max_depth
        self._depth = 0
        self._strings: list[str] = []
        self._objects: list[Any] = []
        self._traits: list[_Traits] = []
        self._externalizable = EXTERNALIZABLE_READERS if externalizable is None else externalizable
        # Object table index -> bytes the value stands for, once it is complete.
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

        Externalizable readers call this to read the values nested in their body; the
        nesting depth carries on from the enclosing object.

        Returns:
            The decoded value (see the module docstring for the mapping).

        Raises:
            AMFError: the bytes are not valid AMF3 (truncated, unknown marker, invalid
                UTF-8, reference out of range, unregistered externalizable class, ...).
            LimitExceededError: the value nests deeper than ``max_depth``, or its
                references expand the body by more than ``max_expansion`` bytes.
        """
        start = self._pos
        depth = self._depth
        try:
            return self._read()
        except (struct.error, IndexError) as exc:
            self._pos = start
            raise AMFError(f"truncated AMF3 value starting at offset {start}") from exc
        except UnicodeDecodeError as exc:
            self._pos = start
            raise AMFError(f"invalid UTF-8 in AMF3 value at offset {start}: {exc.reason}") from exc
        except RecursionError as exc:
            self._pos = start
            raise LimitExceededError("AMF3 value nests deeper than the Python stack") from exc
        except (AMFError, LimitExceededError):
            self._pos = start
            raise
        finally:
            self._depth = depth

    def read_bytes(self, size: int) -> bytes:
        """Read raw bytes, for externalizable readers whose body is not AMF3 values.

        Args:
            size: number of bytes.

        Returns:
            The next ``size`` bytes.

        Raises:
            AMFError: fewer than ``size`` bytes remain.
        """
        pos = self._pos
        end = pos + size
        if size < 0 or end > self._end:
            raise AMFError(f"{size} bytes requested at offset {pos}, {self._end - pos} remain")
        self._pos = end
        return bytes(self._view[pos:end])

    def _read_nested(self, pos: int, depth: int) -> tuple[Any, int]:
        """Read one value at ``pos`` for the AMF0 decoder (avmplus marker, AMF0 §3.1).

        Shares the AMF0 decoder's buffer; truncation errors are left for its
        :meth:`~aiortmp.protocol.amf0.Decoder.read_value` to translate.
        """
        self._pos = pos
        self._depth = depth
        value = self._read()
        return value, self._pos

    # As in amf0, truncated fixed-size reads surface as IndexError/struct.error and
    # read_value() turns them into AMFError.

    def _read(self) -> Any:
        pos = self._pos
        marker = self._view[pos]
        self._pos = pos + 1
        if marker == Marker.STRING:
            return self._read_string()
        if marker == Marker.INTEGER:
            n = self._read_u29()
            # AMF3 §3.6: a signed 29-bit integer in two's complement.
            return n - 0x20000000 if n & 0x10000000 else n
        if marker < len(_READERS):
            objects = self._objects
            slot = len(objects)
            expansion = self._expansion
            value = _READERS[marker](self)
            if len(objects) > slot:
                # A complex value takes its table slot before its members do: record
                # what a later reference to it stands for.
                self._weights[slot] = self._pos - pos + self._expansion - expansion
            return value
        raise AMFError(f"unknown AMF3 type marker 0x{marker:02x} at offset {pos}")

    def _read_u29(self) -> int:
        # AMF3 §1.3.1: up to three bytes carry 7 bits each behind a continuation bit;
        # a fourth byte carries 8 bits.
        view = self._view
        pos = self._pos
        b = view[pos]
        if b < 0x80:
            self._pos = pos + 1
            return b
        n = (b & 0x7F) << 7
        b = view[pos + 1]
        if b < 0x80:
            self._pos = pos + 2
            return n | b
        n = (n | (b & 0x7F)) << 7
        b = view[pos + 2]
        if b < 0x80:
            self._pos = pos + 3
            return n | b
        n = (n | (b & 0x7F)) << 8
        b = view[pos + 3]
        self._pos = pos + 4
        return n | b

    def _take(self, length: int, what: str) -> memoryview:
        pos = self._pos
        end = pos + length
        if end > self._end:
            raise AMFError(
                f"AMF3 {what} of {length} bytes at offset {pos} overruns the "
                f"{self._end}-byte buffer"
            )
        self._pos = end
        return self._view[pos:end]

    def _check_count(self, count: int, min_bytes_each: int, what: str) -> None:
        # Every element needs some bytes: reject impossible counts up front, so a
        # hostile count cannot make us loop or allocate.
        remaining = self._end - self._pos
        if count * min_bytes_each > remaining:
            raise AMFError(
                f"AMF3 {what} at offset {self._pos} claims {count} elements but only "
                f"{remaining} bytes remain"
            )

    def _read_string(self) -> str:
        # AMF3 §1.3.2 UTF-8-vr: low bit 0 = string table index, 1 = inline length.
        ref = self._read_u29()
        if not ref & 1:
            return self._string_ref(ref >> 1)
        length = ref >> 1
        if length == 0:
            # The empty string is never added to the table (nor sent by reference).
            return ""
        text = str(self._take(length, "string"), "utf-8")
        self._strings.append(text)
        return text

    def _string_ref(self, index: int) -> str:
        if index >= len(self._strings):
            raise AMFError(
                f"AMF3 string reference {index} before offset {self._pos} but the table "
                f"holds {len(self._strings)}"
            )
        text = self._strings[index]
        self._expand(len(text))
        return text

    def _object_ref(self, index: int) -> Any:
        if index >= len(self._objects):
            raise AMFError(
                f"AMF3 object reference {index} before offset {self._pos} but the table "
                f"holds {len(self._objects)}"
            )
        value = self._objects[index]
        if value is _PENDING:
            raise AMFError(f"AMF3 object reference {index} to an externalizable still being read")
        # A reference to a container still being read (a cycle) adds nothing.
        self._expand(self._weights.get(index, 0))
        return value

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

    def _read_undefined(self) -> Any:
        return UNDEFINED

    def _read_null(self) -> None:
        return None

    def _read_false(self) -> bool:
        return False

    def _read_true(self) -> bool:
        return True

    def _read_integer(self) -> int:
        n = self._read_u29()
        return n - 0x20000000 if n & 0x10000000 else n

    def _read_double(self) -> float:
        pos = self._pos
        self._pos = pos + 8
        return float(_DOUBLE_unpack(self._view, pos)[0])

    def _read_xml_document(self) -> Any:
        return self._read_text(XMLDocument)

    def _read_xml(self) -> Any:
        return self._read_text(XML)

    def _read_text(self, cls: type[XMLDocument] | type[XML]) -> Any:
        # AMF3 §3.9/§3.13: U29X; XML goes in the object table, not the string table.
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        text = cls(str(self._take(ref >> 1, "XML"), "utf-8"))
        self._objects.append(text)
        return text

    def _read_date(self) -> Any:
        # AMF3 §3.10: U29D-value; the bits above the inline flag are not significant.
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        value = ms_to_datetime(self._read_double())
        self._objects.append(value)
        return value

    def _read_array(self) -> Any:
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        self._enter()
        count = ref >> 1
        # The first associative key decides list vs AMF3Array; reading it touches only
        # the string table, so the array still takes the next object-table slot before
        # any of its values (which may refer back to it).
        key = self._read_string()
        read = self._read
        if not key:
            self._check_count(count, 1, "array")
            items: list[Any] = []
            self._objects.append(items)
            append = items.append
            for _ in range(count):
                append(read())
            self._depth -= 1
            return items
        array = AMF3Array()
        self._objects.append(array)
        assoc = array.assoc
        while key:
            assoc[key] = read()
            key = self._read_string()
        self._check_count(count, 1, "array")
        dense = array.dense
        for _ in range(count):
            dense.append(read())
        self._depth -= 1
        return array

    def _read_object(self) -> Any:
        # AMF3 §3.12, U29O: bit 0 inline object, bit 1 inline traits, bit 2
        # externalizable, bit 3 dynamic, the rest the sealed member count.
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        self._enter()
        if not ref & 2:
            index = ref >> 2
            if index >= len(self._traits):
                raise AMFError(
                    f"AMF3 traits reference {index} before offset {self._pos} but the "
                    f"table holds {len(self._traits)}"
                )
            traits = self._traits[index]
            # Each use writes the member names out again.
            self._expand(len(traits.class_name) + sum(map(len, traits.members)))
        elif ref & 4:
            # U29O-traits-ext: the remaining bits are not significant.
            traits = _Traits(self._read_string(), (), False, True)
            self._traits.append(traits)
        else:
            count = ref >> 4
            class_name = self._read_string()
            self._check_count(count, 1, "sealed member list")
            members = tuple([self._read_string() for _ in range(count)])
            traits = _Traits(class_name, members, bool(ref & 8), False)
            self._traits.append(traits)

        if traits.externalizable:
            return self._read_externalizable(traits.class_name)

        props: dict[str, Any] = {}
        obj: Any = props
        if traits.class_name:
            obj = TypedObject(class_name=traits.class_name, properties=props)
        self._objects.append(obj)
        read = self._read
        for name in traits.members:
            props[name] = read()
        if traits.dynamic:
            key = self._read_string()
            while key:
                props[key] = read()
                key = self._read_string()
        self._depth -= 1
        return obj

    def _read_externalizable(self, class_name: str) -> Any:
        reader = self._externalizable.get(class_name)
        if reader is None:
            raise AMFError(
                f"AMF3 externalizable class {class_name!r} has no registered reader "
                "(see register_externalizable)"
            )
        slot = len(self._objects)
        self._objects.append(_PENDING)
        value = reader(self)
        self._objects[slot] = value
        self._depth -= 1
        return value

    def _read_byte_array(self) -> Any:
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        value = bytes(self._take(ref >> 1, "ByteArray"))
        self._objects.append(value)
        return value

    def _read_vector(self, kind: VectorKind) -> Any:
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        count = ref >> 1
        pos = self._pos
        fixed = self._view[pos] != 0
        self._pos = pos + 1
        if kind is VectorKind.OBJECT:
            self._enter()
            class_name = self._read_string()
            self._check_count(count, 1, "object vector")
            vector = Vector(kind=kind, items=[], fixed=fixed, class_name=class_name)
            self._objects.append(vector)
            append = vector.items.append
            read = self._read
            for _ in range(count):
                append(read())
            self._depth -= 1
            return vector
        code, size = _VECTOR_FORMATS[kind]
        self._check_count(count, size, "vector")
        items = list(struct.unpack_from(f">{count}{code}", self._view, self._pos))
        self._pos += count * size
        vector = Vector(kind=kind, items=items, fixed=fixed)
        self._objects.append(vector)
        return vector

    def _read_vector_int(self) -> Any:
        return self._read_vector(VectorKind.INT)

    def _read_vector_uint(self) -> Any:
        return self._read_vector(VectorKind.UINT)

    def _read_vector_double(self) -> Any:
        return self._read_vector(VectorKind.DOUBLE)

    def _read_vector_object(self) -> Any:
        return self._read_vector(VectorKind.OBJECT)

    def _read_dictionary(self) -> Any:
        ref = self._read_u29()
        if not ref & 1:
            return self._object_ref(ref >> 1)
        self._enter()
        count = ref >> 1
        pos = self._pos
        weak_keys = self._view[pos] != 0
        self._pos = pos + 1
        self._check_count(count, 2, "dictionary")
        dictionary = Dictionary(items=[], weak_keys=weak_keys)
        self._objects.append(dictionary)
        append = dictionary.items.append
        read = self._read
        for _ in range(count):
            key = read()
            append((key, read()))
        self._depth -= 1
        return dictionary


_VECTOR_FORMATS: Final = {
    VectorKind.INT: ("i", 4),
    VectorKind.UINT: ("I", 4),
    VectorKind.DOUBLE: ("d", 8),
}

_READERS: tuple[Callable[[Decoder], Any], ...] = (
    Decoder._read_undefined,
    Decoder._read_null,
    Decoder._read_false,
    Decoder._read_true,
    Decoder._read_integer,
    Decoder._read_double,
    Decoder._read_string,
    Decoder._read_xml_document,
    Decoder._read_date,
    Decoder._read_array,
    Decoder._read_object,
    Decoder._read_xml,
    Decoder._read_byte_array,
    Decoder._read_vector_int,
    Decoder._read_vector_uint,
    Decoder._read_vector_double,
    Decoder._read_vector_object,
    Decoder._read_dictionary,
)


def decode(data: bytes | bytearray | memoryview, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode exactly one AMF3 value.

    Args:
        data: the encoded value, with nothing after it.
        max_depth: maximum number of nested containers.

    Returns:
        The decoded value.

    Raises:
        AMFError: the bytes are not one valid AMF3 value (including trailing bytes).
        LimitExceededError: the value nests deeper than ``max_depth``, or references
            expand it too much (:data:`~aiortmp.protocol.amf0.DEFAULT_MAX_EXPANSION`).
    """
    decoder = Decoder(data, max_depth=max_depth)
    value = decoder.read_value()
    if not decoder.at_end:
        raise AMFError(
            f"{decoder._end - decoder.position} trailing bytes after the AMF3 value "
            f"at offset {decoder.position}"
        )
    return value


def decode_all(
    data: bytes | bytearray | memoryview, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> list[Any]:
    """Decode a sequence of AMF3 values sharing one set of reference tables.

    Args:
        data: the encoded values back to back; empty input gives an empty list.
        max_depth: maximum number of nested containers, per value.

    Returns:
        The decoded values in order.

    Raises:
        AMFError: the bytes are not a sequence of valid AMF3 values.
        LimitExceededError: a value nests deeper than ``max_depth``, or references
            expand the body too much (:data:`~aiortmp.protocol.amf0.DEFAULT_MAX_EXPANSION`).
    """
    decoder = Decoder(data, max_depth=max_depth)
    values: list[Any] = []
    while not decoder.at_end:
        values.append(decoder.read_value())
    return values


# --------------------------------------------------------------------------- encoding

_U29_LIMIT: Final = 1 << 29
_DOUBLE_pack = _DOUBLE.pack


def _u29(n: int) -> bytes:
    # AMF3 §1.3.1, the inverse of Decoder._read_u29.
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes(((n >> 7) | 0x80, n & 0x7F))
    if n < 0x200000:
        return bytes(((n >> 14) | 0x80, ((n >> 7) & 0x7F) | 0x80, n & 0x7F))
    if n < _U29_LIMIT:
        return bytes(
            ((n >> 22) | 0x80, ((n >> 15) & 0x7F) | 0x80, ((n >> 8) & 0x7F) | 0x80, n & 0xFF)
        )
    raise AMFEncodeError(f"{n} does not fit a U29 (29-bit) length, count or index")


def _inline(size: int, what: str) -> bytes:
    # U29 with the low "inline" bit set and the size above it (28 bits left).
    if size >= 1 << 28:
        raise AMFEncodeError(f"AMF3 {what} of {size} exceeds 2**28 - 1")
    return _u29((size << 1) | 1)


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AMFEncodeError(f"string is not encodable as UTF-8: {exc.reason}") from exc


class Encoder:
    """Writes AMF3 values, keeping the reference tables across calls (AMF3 §2.1).

    Values enter the object table by identity and are held until the encoder is
    dropped, so do not mutate a container between two calls on the same encoder: the
    second call would send a reference to the first encoding. :func:`encode` uses a
    fresh encoder per call.
    """

    __slots__ = ("_strings", "_objects", "_traits")

    def __init__(self) -> None:
        self._strings: dict[str, int] = {}
        # id -> (index, value): holding the value keeps its id from being reused.
        self._objects: dict[int, tuple[int, object]] = {}
        self._traits: dict[tuple[str, tuple[str, ...], bool], int] = {}

    def encode(self, *values: Any) -> bytes:
        """Encode values back to back.

        Args:
            *values: the values, mapped as described in the module docstring.

        Returns:
            The encoded bytes.

        Raises:
            AMFEncodeError: a value (or a nested one) has no AMF3 representation.
        """
        out = bytearray()
        for value in values:
            self.write_into(out, value)
        return bytes(out)

    def write_into(self, out: bytearray, value: Any) -> None:
        """Append one encoded value to ``out``.

        Args:
            out: the buffer to extend.
            value: the value.

        Raises:
            AMFEncodeError: the value (or a nested one) has no AMF3 representation: an
                unsupported type, a non-``str`` or empty member name, a string that is
                not valid Unicode, or a size beyond the 28-bit U29 limits.
        """
        try:
            self._write(out, value)
        except RecursionError as exc:
            raise AMFEncodeError("value nests too deeply to encode") from exc

    def _write(self, out: bytearray, value: Any) -> None:
        if value is None:
            out.append(Marker.NULL)
        elif value is True:
            out.append(Marker.TRUE)
        elif value is False:
            out.append(Marker.FALSE)
        elif isinstance(value, str):
            if isinstance(value, (XMLDocument, XML)):
                marker = Marker.XML_DOCUMENT if isinstance(value, XMLDocument) else Marker.XML
                if not self._reference(out, marker, value):
                    data = _utf8(value)
                    out += _inline(len(data), "XML")
                    out += data
            else:
                out.append(Marker.STRING)
                self._write_string(out, value)
        elif isinstance(value, int):
            if _INT29_MIN <= value <= _INT29_MAX:
                out.append(Marker.INTEGER)
                out += _u29(value & 0x1FFFFFFF)
            else:
                self._write_double(out, value)
        elif isinstance(value, float):
            self._write_double(out, value)
        elif isinstance(value, dict):
            if isinstance(value, ECMAArray):
                self._write_array(out, value, (), value)
            else:
                self._write_object(out, value, "", value, dynamic=True)
        elif isinstance(value, (list, tuple)):
            self._write_array(out, value, value, {})
        elif isinstance(value, TypedObject):
            self._write_object(out, value, value.class_name, value.properties, dynamic=False)
        elif isinstance(value, AMF3Array):
            self._write_array(out, value, value.dense, value.assoc)
        elif isinstance(value, datetime):
            if not self._reference(out, Marker.DATE, value):
                # AMF3 §3.10: U29D-value with only the inline bit set, then the DOUBLE.
                out += b"\x01"
                out += _DOUBLE_pack(datetime_to_ms(value))
        elif isinstance(value, (bytes, bytearray)):
            if not self._reference(out, Marker.BYTE_ARRAY, value):
                out += _inline(len(value), "ByteArray")
                out += value
        elif isinstance(value, Vector):
            self._write_vector(out, value)
        elif isinstance(value, Dictionary):
            if not self._reference(out, Marker.DICTIONARY, value):
                out += _inline(len(value.items), "Dictionary")
                out.append(1 if value.weak_keys else 0)
                for key, item in value.items:
                    self._write(out, key)
                    self._write(out, item)
        elif value is UNDEFINED:
            out.append(Marker.UNDEFINED)
        elif isinstance(value, AMF3Value):
            self._write(out, value.value)
        else:
            raise AMFEncodeError(f"{type(value).__name__} has no AMF3 representation")

    def _reference(self, out: bytearray, marker: int, value: object) -> bool:
        """Write the marker, then a reference if ``value`` was sent before.

        Returns:
            True if a reference was written; False if the caller must write the value
            inline (it now holds the next object-table index).
        """
        out.append(marker)
        entry = self._objects.get(id(value))
        if entry is not None:
            out += _u29(entry[0] << 1)
            return True
        self._objects[id(value)] = (len(self._objects), value)
        return False

    def _write_double(self, out: bytearray, value: float) -> None:
        out.append(Marker.DOUBLE)
        try:
            out += _DOUBLE_pack(value)
        except (OverflowError, struct.error) as exc:
            raise AMFEncodeError(f"{value!r} does not fit an AMF3 double") from exc

    def _write_string(self, out: bytearray, value: str) -> None:
        # AMF3 §1.3.2 UTF-8-vr. The empty string is always inline and never enters the
        # table.
        if not value:
            out.append(0x01)
            return
        index = self._strings.get(value)
        if index is not None:
            out += _u29(index << 1)
            return
        data = _utf8(value)
        out += _inline(len(data), "string")
        out += data
        self._strings[value] = len(self._strings)

    def _write_key(self, out: bytearray, key: object, what: str) -> None:
        if not isinstance(key, str) or not key:
            # An empty name ends the dynamic members / associative part.
            raise AMFEncodeError(f"AMF3 {what} must be a non-empty str, not {key!r}")
        self._write_string(out, key)

    def _write_array(
        self, out: bytearray, value: object, dense: Any, assoc: Mapping[Any, Any]
    ) -> None:
        # AMF3 §3.11: U29A-value (dense count), associative pairs ended by the empty
        # string, then the dense values.
        if self._reference(out, Marker.ARRAY, value):
            return
        out += _inline(len(dense), "array")
        for key, item in assoc.items():
            self._write_key(out, key, "array key")
            self._write(out, item)
        out.append(0x01)
        for item in dense:
            self._write(out, item)

    def _write_object(
        self,
        out: bytearray,
        value: object,
        class_name: str,
        properties: Mapping[Any, Any],
        *,
        dynamic: bool,
    ) -> None:
        if self._reference(out, Marker.OBJECT, value):
            return
        if dynamic:
            members: tuple[str, ...] = ()
        else:
            members = tuple(properties)
            for name in members:
                if not isinstance(name, str):
                    raise AMFEncodeError(f"AMF3 member name must be str, not {name!r}")
        if not isinstance(class_name, str):
            raise AMFEncodeError(f"AMF3 class name must be str, not {class_name!r}")
        key = (class_name, members, dynamic)
        index = self._traits.get(key)
        if index is not None:
            # U29O-traits-ref: inline object, traits by reference.
            out += _u29((index << 2) | 1)
        else:
            if len(members) >= 1 << 25:
                raise AMFEncodeError(f"{len(members)} sealed members exceed 2**25 - 1")
            # U29O-traits: inline object, inline traits, not externalizable.
            out += _u29((len(members) << 4) | (0b1000 if dynamic else 0) | 0b0011)
            self._write_string(out, class_name)
            for name in members:
                self._write_string(out, name)
            self._traits[key] = len(self._traits)
        if dynamic:
            for name, item in properties.items():
                self._write_key(out, name, "dynamic member name")
                self._write(out, item)
            out.append(0x01)
        else:
            for item in properties.values():
                self._write(out, item)

    def _write_vector(self, out: bytearray, value: Vector) -> None:
        try:
            kind = VectorKind(value.kind)
        except ValueError as exc:
            raise AMFEncodeError(f"{value.kind!r} is not a VectorKind") from exc
        if self._reference(out, kind, value):
            return
        items = value.items
        out += _inline(len(items), "Vector")
        out.append(1 if value.fixed else 0)
        if kind is VectorKind.OBJECT:
            self._write_string(out, value.class_name)
            for item in items:
                self._write(out, item)
            return
        code, _size = _VECTOR_FORMATS[kind]
        try:
            out += struct.pack(f">{len(items)}{code}", *items)
        except (struct.error, OverflowError) as exc:
            raise AMFEncodeError(f"Vector.<{kind.name.lower()}> element out of range") from exc


def encode(*values: Any) -> bytes:
    """Encode values back to back in AMF3, with one set of reference tables for all.

    Args:
        *values: the values, mapped as described in the module docstring.

    Returns:
        The encoded bytes.

    Raises:
        AMFEncodeError: a value (or a nested one) has no AMF3 representation.
    """
    return Encoder().encode(*values)
