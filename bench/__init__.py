"""Side-by-side benchmark of aiortmp and nginx-rtmp (``make bench``, ``python -m bench.run``).

Modules:

- :mod:`bench.media`: the test FLV (made once with FFmpeg) and its pre-serialized chunks.
- :mod:`bench.loadgen`: the load generator processes (publishers with a latency player,
  byte-counting players, frame-counting players).
- :mod:`bench.servers`: starting aiortmp and nginx-rtmp pinned to a core, and reading
  their CPU time and RSS from ``/proc``.
- :mod:`bench.report`: ``docs/benchmarks.md``.
- :mod:`bench.run`: the orchestration and the command line.
"""
