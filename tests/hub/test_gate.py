"""The keyframe gate (hub/gate.py)."""

from __future__ import annotations

from aiortmp.hub.gate import KeyframeGate
from aiortmp.hub.packet import PacketKind as K


def test_closed_gate_drops_inter_frames_until_a_keyframe() -> None:
    gate = KeyframeGate()
    kinds = [K.VIDEO, K.AUDIO, K.VIDEO_CONFIG, K.DATA, K.VIDEO, K.KEYFRAME, K.VIDEO]
    assert [gate.admit(k) for k in kinds] == [False, True, True, True, False, True, True]
    assert gate.dropped == 2 and not gate.closed


def test_close_again_and_hold() -> None:
    gate = KeyframeGate(closed=False)
    assert gate.admit(K.VIDEO)
    gate.close()
    assert not gate.admit(K.VIDEO)
    assert gate.admit(K.KEYFRAME, hold=True)  # the keyframe passes, the gate stays closed
    assert not gate.admit(K.VIDEO)
    assert gate.admit(K.KEYFRAME) and gate.admit(K.VIDEO)
