"""A short run of every fuzz target, as part of ``make test``.

Each target gets its known hostile inputs (tests/fuzz/hostile.py) and a fixed set of
generated ones (derandomized, so the suite is repeatable); ``make fuzz`` runs the same
targets for longer with fresh inputs.
"""

from __future__ import annotations

import pytest

from aiortmp.protocol import amf0, amf3
from aiortmp.protocol.chunk import ChunkWriter
from aiortmp.protocol.errors import CommandError, LimitExceededError
from aiortmp.protocol.messages import Message, MessageType
from aiortmp.protocol.session import ServerSession

from .corpus import CLIENT_HANDSHAKE
from .hostile import amf0_reference_bomb, amf3_reference_bomb, deep_amf0_object
from .runner import run_target
from .targets import TARGETS

QUICK_EXAMPLES = 150


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_quick(name: str) -> None:
    run_target(TARGETS[name], examples=QUICK_EXAMPLES, derandomize=True)


# -- regressions: what fuzzing and the attacks found ------------------------------------


def test_deep_amf_is_refused_before_the_stack_runs_out() -> None:
    with pytest.raises(LimitExceededError, match="max_depth"):
        amf0.decode(deep_amf0_object(50_000))


def test_reference_bombs_are_refused() -> None:
    # 40 doublings: a 600-byte body standing for 2**40 values (AMF0 §2.9 references).
    with pytest.raises(LimitExceededError, match="max_expansion"):
        amf0.decode(amf0_reference_bomb(40))
    with pytest.raises(LimitExceededError, match="max_expansion"):
        amf3.decode_all(amf3_reference_bomb(40))
    # ... also behind an avmplus marker, where the AMF3 expansion counts for the AMF0 body.
    with pytest.raises(LimitExceededError, match="max_expansion"):
        amf0.decode(b"\x11" + amf3_reference_bomb(40))
    # A few references are fine, and stay shared objects.
    value = amf0.decode(amf0_reference_bomb(8))
    assert value["k7"][0] is value["k7"][1] is value["k6"]
    assert len(amf0.encode(value)) < 16 * 1024


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 1e300])
def test_non_finite_stream_ids_are_command_errors(bad: float) -> None:
    session = ServerSession()
    session.receive_data(CLIENT_HANDSHAKE)
    writer = ChunkWriter()
    session.receive_data(writer.write(command("connect", 1.0, {"app": "live"})))
    session.accept_connect(next(e for e in iter(session.next_event, None) if hasattr(e, "app")))
    session.receive_data(writer.write(command("createStream", 2.0, None)))
    deletion = writer.write(command("deleteStream", 0.0, None, bad))
    if bad == 1e300:  # finite: an unknown stream, ignored
        session.receive_data(deletion)
        return
    with pytest.raises(CommandError, match="stream id is not a number"):
        session.receive_data(deletion)


def command(*values: object) -> Message:
    return Message(
        type_id=MessageType.COMMAND_AMF0,
        timestamp_ms=0,
        message_stream_id=0,
        payload=amf0.encode(*values),
    )
