"""What feeds a stream: an RTMP publisher (:mod:`.rtmp_publish`), a pull from another
server (:mod:`.pull`). Each attaches to a :class:`~aiortmp.hub.stream.Stream` as its
:class:`~aiortmp.hub.stream.Source`."""
