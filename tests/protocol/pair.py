"""An in-memory client/server pair of sans-I/O sessions (no sockets)."""

from __future__ import annotations

from aiortmp.protocol.events import Event
from aiortmp.protocol.session import ClientSession, ServerSession


def transfer(src: ClientSession | ServerSession, dst: ClientSession | ServerSession) -> int:
    """Move what ``src`` wants to send into ``dst``; return the byte count."""
    data = src.data_to_send()
    if data:
        dst.receive_data(data)
    return len(data)


def drain(session: ClientSession | ServerSession) -> list[Event]:
    """Every event ``session`` has buffered."""
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def roundtrip(client: ClientSession, server: ServerSession) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until both are quiet; return (client events, server events)."""
    client_events: list[Event] = []
    server_events: list[Event] = []
    while True:
        moved = transfer(client, server)
        server_events += drain(server)
        moved += transfer(server, client)
        client_events += drain(client)
        if not moved:
            return client_events, server_events


def handshaken_pair(**server_options: object) -> tuple[ClientSession, ServerSession]:
    """A client and a server with the handshake done."""
    client = ClientSession()
    server = ServerSession(**server_options)  # type: ignore[arg-type]
    client.initiate()
    roundtrip(client, server)
    assert client.is_open and server.is_open
    return client, server
