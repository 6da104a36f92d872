"""What reads a stream.

Inline outputs write shared bytes to a socket inside the stream's delivery (the hot path):
RTMP players (:mod:`.rtmp_play`) and HTTP-FLV / WebSocket-FLV viewers (:mod:`.http_flv`),
both :class:`~.player.Player` objects. Queued outputs have their own bounded queue and
task (:mod:`.queued`): recording (:mod:`.record`) and push relays (:mod:`.push`).
"""
