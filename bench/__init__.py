"""Side-by-side benchmark of aiortmp and nginx-rtmp (``make bench``, ``python -m bench.run``).

Modules:

- :mod:`bench.media`: the test FLVs (2.66 Mbit/s and 232 kbit/s, made once with FFmpeg)
  and their pre-serialized chunks.
- :mod:`bench.loadgen`: the Python load generator processes (publishers, which record
  when they wrote each video frame; the fallback players and latency players).
- :mod:`bench.drain`: builds and runs ``drain.c``, the compiled drain client that plays
  the N players and the latency players of every case in one epoll process.
- :mod:`bench.servers`: starting aiortmp and nginx-rtmp pinned to a core, and reading
  their CPU time and RSS from ``/proc``.
- :mod:`bench.report`: ``docs/benchmarks.md``.
- :mod:`bench.run`: the orchestration and the command line.
"""
