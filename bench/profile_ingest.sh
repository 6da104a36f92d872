#!/usr/bin/env bash
# Where ingest spends its CPU: 100 publishers x 2.66 Mbit/s (bench/loadgen.py on core 1)
# into `aiortmp serve` on core 0, sampled by perf for 10 s after an 8 s warm-up.
# usage: bench/profile_ingest.sh MEDIA.flv [COUNT]   (MEDIA: e.g. bench/cache/*.flv made by
# `make bench`); needs perf (linux-perf). Prints the server's CPU and perf's split by DSO
# and by symbol.
set -eu
media=$1; count=${2:-100}; port=19353
py=.venv/bin/python
config=$(mktemp); trap 'rm -f "$config"' EXIT
printf '[limits]\nmax_connections_per_ip = 20000\nmax_connections = 20000\n' > "$config"
taskset -c 0 $py -m aiortmp.cli serve --listen 127.0.0.1:$port --no-http --log-level warning --config "$config" &
server=$!
sleep 2
sleep 40 | taskset -c 1 $py -m bench.loadgen publish --url rtmp://127.0.0.1:$port/live \
  --media "$media" --count "$count" > /dev/null 2>&1 &
publisher=$!
sleep 8
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$server/stat)
perf record -F 2000 -g -p $server -o /tmp/aiortmp-ingest.perf -- sleep 10 > /dev/null 2>&1
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$server/stat)
echo "server CPU: user $((u1 - u0)) + system $((s1 - s0)) ticks in 10 s (1000 = one core)"
kill $publisher $server 2> /dev/null || true
wait $server 2> /dev/null || true
perf report -i /tmp/aiortmp-ingest.perf --no-children --sort dso --stdio -g none 2> /dev/null | grep '%' | grep -v '^#'
perf report -i /tmp/aiortmp-ingest.perf --no-children --sort dso,symbol --stdio -g none 2> /dev/null | grep '%' | grep -v '^#' | head -25
