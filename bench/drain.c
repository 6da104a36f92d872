/*
 * drain.c: the benchmark's compiled RTMP players. Built by bench/drain.py into
 * bench/cache/drain with the system C compiler; run by bench/run.py pinned to the load core.
 *
 *   drain --port 1935 --app live --stream s --count 12000 --rate 500 \
 *         --latency-first 1 --latency-last 1 --tick-ms 500 --src-addrs 4
 *
 * One process, one thread, epoll, non-blocking sockets, one 256 KiB receive buffer for all
 * connections (the bytes are counted, not kept). Every connection is a real RTMP player:
 * simple handshake (RTMP 1.0 §5.2.5), connect, createStream, Set Buffer Length and play
 * (§7.2.1.1, §7.2.2.1, §7.1.7); it follows the chunk stream (§5.3.1) header by header
 * without copying payloads, except the few messages a player must act on:
 *   - Set Chunk Size (§5.4.1): the size of the chunks that follow;
 *   - Window Acknowledgement Size (§5.4.4): an Acknowledgement (§5.4.3) is sent each time
 *     that many bytes arrived since the last one, so servers that wait for it keep sending;
 *   - User Control Ping Request (§7.1.7): answered with a Ping Response (nginx-rtmp drops
 *     a client that sends nothing for `ping` + `ping_timeout`, 90 s by default);
 *   - the _result of connect and createStream, and onStatus (NetStream.Play.Start: the
 *     player has joined; level "error": it failed).
 * The first two payload bytes of each audio/video message are kept: a coded frame is one
 * whose AVCPacketType / AACPacketType is 1, as in the Python load generator.
 *
 * Two sorts of connections:
 *   - drain players (--count), playing <stream><i % streams>. Once playing, they are read in
 *     rounds every --tick-ms milliseconds (0: as soon as data arrives, as a player process
 *     blocked in read() would be). A round makes each read collect a few of the server's
 *     writes: the generator's cost is per read, not per byte, so this is what lets one core
 *     drain 12,000 connections. The socket buffers hold a round's worth easily;
 *   - latency players (--latency-first joined before the drain players, --latency-last
 *     after them), playing <stream>0, always read as soon as data arrives (between batches
 *     of a round too). For each coded video frame they record its RTMP timestamp and the
 *     CLOCK_MONOTONIC time at which its last byte was read. The publisher (bench/loadgen.py)
 *     records the CLOCK_MONOTONIC time it wrote each frame (Python's time.monotonic() is
 *     that clock); bench/run.py joins the two by timestamp.
 *
 * Joining: the latency-first players, then the drain players, one every 1/--rate s, then
 * the latency-last players; a player not playing --timeout s after its connect() has
 * failed (its socket is closed).
 *
 * Protocol on stdin/stdout (as bench/loadgen.py): {"event":"ready", "playing", "failed",
 * "errors" (a few distinct reasons), "join_s" (first connect() to last Play.Start),
 * "setup_ms" {p50, p99, max} (connect() to Play.Start per player), ...} once every player
 * joined or failed; then one command a line on stdin, one JSON object a line on stdout:
 *   snap  every drain player with data is read first, then {"t" (CLOCK_MONOTONIC s),
 *         "bytes": [per drain player], "closed", "cpu_user_s", "cpu_sys_s" (getrusage: the
 *         generator's own CPU), "reads" (recv() calls), "rounds", "latency":
 *         [[[timestamp_ms, t], ...] per latency player], "latency_closed", and with --frames
 *         "video_frames", "audio_frames", "streams"}; latency samples are given once (each
 *         snap returns those since the previous one);
 *   stop  the same with "event": "stopped", then every connection is closed and it exits.
 * EOF on stdin is a stop without the answer.
 *
 * drain --parse-file FILE [--split N] follows a server-to-client chunk stream from a file
 * instead (tests/bench/test_drain.py checks the reader with it).
 *
 * Limits: RLIMIT_NOFILE is raised to what the connections need (the hard limit too when
 * the process may: root). With --src-addrs K the connections are bound to 127.0.0.2 ..
 * 127.0.0.(K+1) (IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect() time, per
 * 4-tuple), so the ephemeral port range is never the limit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RX_SIZE (256 * 1024)
#define MAX_CS 12           /* chunk streams per connection: servers use 2..8 */
#define CAPTURE_MAX 65536   /* largest control/command message kept */
#define OUT_CHUNK 4096      /* our outgoing chunk size (sent as Set Chunk Size) */
#define HS_SIZE 1536
#define MAX_ERRORS 8
#define BATCH 256

enum { ST_CONNECTING = 1, ST_HANDSHAKE, ST_CONNECT, ST_CREATE, ST_PLAY, ST_PLAYING, ST_CLOSED, ST_FAILED };
enum { K_DRAIN, K_LATENCY };

typedef struct {
    uint32_t csid, timestamp, delta, length, left, msid, got;
    uint8_t type, ext, head[2];
    uint8_t *buf; /* payload of a control/command message */
} cstream;

typedef struct {
    uint32_t ts;
    double t;
} sample;

typedef struct {
    int fd;
    uint8_t state, kind, hdr_have, ncs, in_tick, c2_sent, want_out;
    int8_t cur; /* chunk stream whose payload is being read; -1: a header is next */
    uint8_t hdr[18];
    uint32_t chunk_size, chunk_left, ack_window, stream_id, out_len, out_cap;
    uint64_t bytes, last_ack, video_frames, audio_frames;
    double t_connect, t_play;
    uint8_t *hs; /* S0 S1 S2 while the handshake lasts */
    uint32_t hs_have;
    uint8_t *out; /* bytes the kernel did not take yet (rare: our writes are small) */
    sample *lat;
    uint32_t nlat, lat_cap;
    const char *stream;
    cstream cs[MAX_CS];
} conn;

/* -- options and global state ------------------------------------------------------ */

static struct {
    const char *host, *app, *prefix;
    int port, count, streams, lat_first, lat_last, src_addrs, frames;
    double rate, tick_s, timeout_s;
} opt = {"127.0.0.1", "live", "s", 1935, 1, 1, 0, 0, 0, 0, 200.0, 0.0, 30.0};

static conn *conns;     /* latency-first, drain players, latency-last */
static int nconns;
static char **names;    /* stream names */
static char tc_url[512];
static int imm_ep, tick_ep;
static int n_in_tick;
static uint8_t rx[RX_SIZE];
static char *errors[MAX_ERRORS];
static int nerrors;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double now_cache;
static FILE *trace; /* --parse-file: one line per complete message */
static uint64_t n_reads, n_rounds; /* recv() calls, drain rounds: the generator's own work */

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void note_error(const char *msg) {
    for (int i = 0; i < nerrors; i++)
        if (strcmp(errors[i], msg) == 0) return;
    if (nerrors < MAX_ERRORS) errors[nerrors++] = strdup(msg);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static void put_be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static void put_be24(uint8_t *p, uint32_t v) { p[0] = v >> 16; p[1] = v >> 8; p[2] = v; }

/* -- output ------------------------------------------------------------------------ */

static void conn_fail(conn *c, const char *why);

static void set_events(conn *c) {
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->in_tick ? tick_ep : imm_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_out(conn *c) {
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_fail(c, "send failed");
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (uint32_t)n);
        c->out_len -= (uint32_t)n;
    }
    uint8_t want = c->out_len != 0;
    if (want != c->want_out) {
        c->want_out = want;
        set_events(c);
    }
}

static void out_append(conn *c, const uint8_t *data, uint32_t len) {
    if (c->out_len + len > c->out_cap) {
        uint32_t cap = c->out_cap ? c->out_cap : 2048;
        while (cap < c->out_len + len) cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out) abort();
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

/* One message as a fmt 0 chunk and fmt 3 continuations (§5.3.1), timestamp 0. */
static void send_message(conn *c, uint8_t csid, uint8_t type, uint32_t msid, const uint8_t *payload,
                         uint32_t len) {
    uint8_t h[12];
    h[0] = csid; /* fmt 0, csid 2..63 */
    put_be24(h + 1, 0);
    put_be24(h + 4, len);
    h[7] = type;
    h[8] = msid & 0xFF;
    h[9] = (msid >> 8) & 0xFF;
    h[10] = (msid >> 16) & 0xFF;
    h[11] = msid >> 24;
    out_append(c, h, 12);
    for (uint32_t off = 0; off < len; off += OUT_CHUNK) {
        if (off) {
            uint8_t c3 = 0xC0 | csid;
            out_append(c, &c3, 1);
        }
        uint32_t n = len - off < OUT_CHUNK ? len - off : OUT_CHUNK;
        out_append(c, payload + off, n);
    }
}

/* AMF0 (AMF0 spec §2) writer. */
typedef struct {
    uint8_t b[1024];
    uint32_t n;
} amf;

static void amf_raw(amf *a, const void *p, uint32_t n) {
    if (a->n + n > sizeof a->b) abort();
    memcpy(a->b + a->n, p, n);
    a->n += n;
}
static void amf_number(amf *a, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    uint8_t t[9] = {0x00};
    for (int i = 0; i < 8; i++) t[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
    amf_raw(a, t, 9);
}
static void amf_str_body(amf *a, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    uint8_t l[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    amf_raw(a, l, 2);
    amf_raw(a, s, n);
}
static void amf_string(amf *a, const char *s) {
    uint8_t t = 0x02;
    amf_raw(a, &t, 1);
    amf_str_body(a, s);
}
static void amf_bool(amf *a, int v) {
    uint8_t t[2] = {0x01, (uint8_t)(v != 0)};
    amf_raw(a, t, 2);
}
static void amf_null(amf *a) {
    uint8_t t = 0x05;
    amf_raw(a, &t, 1);
}

static void send_command(conn *c, uint8_t csid, uint32_t msid, amf *a) {
    send_message(c, csid, 20, msid, a->b, a->n);
}

static void send_connect(conn *c) {
    uint8_t scs[4];
    put_be32(scs, OUT_CHUNK);
    send_message(c, 2, 1, 0, scs, 4); /* Set Chunk Size first: connect exceeds 128 bytes */
    amf a = {.n = 0};
    amf_string(&a, "connect");
    amf_number(&a, 1.0);
    uint8_t obj = 0x03;
    amf_raw(&a, &obj, 1);
    amf_str_body(&a, "app");
    amf_string(&a, opt.app);
    amf_str_body(&a, "type");
    amf_string(&a, "nonprivate");
    amf_str_body(&a, "flashVer");
    amf_string(&a, "LNX 9,0,124,2");
    amf_str_body(&a, "tcUrl");
    amf_string(&a, tc_url);
    amf_str_body(&a, "fpad");
    amf_bool(&a, 0);
    amf_str_body(&a, "capabilities");
    amf_number(&a, 15.0);
    amf_str_body(&a, "audioCodecs");
    amf_number(&a, 4071.0);
    amf_str_body(&a, "videoCodecs");
    amf_number(&a, 252.0);
    amf_str_body(&a, "videoFunction");
    amf_number(&a, 1.0);
    uint8_t end[3] = {0, 0, 0x09};
    amf_raw(&a, end, 3);
    send_command(c, 3, 0, &a);
    c->state = ST_CONNECT;
}

static void send_create_stream(conn *c) {
    amf a = {.n = 0};
    amf_string(&a, "createStream");
    amf_number(&a, 2.0);
    amf_null(&a);
    send_command(c, 3, 0, &a);
    c->state = ST_CREATE;
}

static void send_play(conn *c) {
    uint8_t sbl[10] = {0, 3}; /* User Control Set Buffer Length (§7.1.7): stream, 1000 ms */
    put_be32(sbl + 2, c->stream_id);
    put_be32(sbl + 6, 1000);
    send_message(c, 2, 4, 0, sbl, 10);
    amf a = {.n = 0};
    amf_string(&a, "play");
    amf_number(&a, 0.0);
    amf_null(&a);
    amf_string(&a, c->stream);
    amf_number(&a, -2.0);
    send_command(c, 8, c->stream_id, &a);
    c->state = ST_PLAY;
}

static void send_ack(conn *c) {
    uint8_t seq[4];
    put_be32(seq, (uint32_t)c->bytes);
    send_message(c, 2, 3, 0, seq, 4);
    c->last_ack = c->bytes;
}

/* -- AMF0 reader (only what the replies to connect/createStream/play need) ------------ */

typedef struct {
    const uint8_t *p, *end;
} rd;

static int amf_skip(rd *r, int depth);

static int rd_key(rd *r, const uint8_t **s, uint16_t *n) {
    if (r->end - r->p < 2) return -1;
    *n = (uint16_t)(r->p[0] << 8 | r->p[1]);
    if (r->end - r->p < 2 + *n) return -1;
    *s = r->p + 2;
    r->p += 2 + *n;
    return 0;
}

static int rd_string(rd *r, const uint8_t **s, uint16_t *n) {
    if (r->p >= r->end || *r->p != 0x02) return -1;
    r->p++;
    return rd_key(r, s, n);
}

static int rd_number(rd *r, double *v) {
    if (r->end - r->p < 9 || *r->p != 0x00) return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = bits << 8 | r->p[1 + i];
    memcpy(v, &bits, 8);
    r->p += 9;
    return 0;
}

static int amf_skip_props(rd *r, int depth) {
    for (;;) {
        const uint8_t *k;
        uint16_t kn;
        if (rd_key(r, &k, &kn) < 0) return -1;
        if (kn == 0 && r->p < r->end && *r->p == 0x09) {
            r->p++;
            return 0;
        }
        if (amf_skip(r, depth + 1) < 0) return -1;
    }
}

static int amf_skip(rd *r, int depth) {
    if (depth > 32 || r->p >= r->end) return -1;
    uint8_t t = *r->p++;
    const uint8_t *s;
    uint16_t n;
    switch (t) {
    case 0x00: /* number */
        if (r->end - r->p < 8) return -1;
        r->p += 8;
        return 0;
    case 0x01: /* boolean */
        if (r->p >= r->end) return -1;
        r->p++;
        return 0;
    case 0x02: /* string */
        return rd_key(r, &s, &n);
    case 0x03: /* object */
        return amf_skip_props(r, depth);
    case 0x05: case 0x06: /* null, undefined */
        return 0;
    case 0x07: /* reference */
        if (r->end - r->p < 2) return -1;
        r->p += 2;
        return 0;
    case 0x08: /* ECMA array */
        if (r->end - r->p < 4) return -1;
        r->p += 4;
        return amf_skip_props(r, depth);
    case 0x0A: { /* strict array */
        if (r->end - r->p < 4) return -1;
        uint32_t count = be32(r->p);
        r->p += 4;
        for (uint32_t i = 0; i < count; i++)
            if (amf_skip(r, depth + 1) < 0) return -1;
        return 0;
    }
    case 0x0B: /* date */
        if (r->end - r->p < 10) return -1;
        r->p += 10;
        return 0;
    case 0x0C: case 0x0F: { /* long string, XML document */
        if (r->end - r->p < 4) return -1;
        uint32_t len = be32(r->p);
        if ((uint64_t)(r->end - r->p) < 4ull + len) return -1;
        r->p += 4 + len;
        return 0;
    }
    case 0x10: /* typed object */
        if (rd_key(r, &s, &n) < 0) return -1;
        return amf_skip_props(r, depth);
    default:
        return -1;
    }
}

static int eq(const uint8_t *s, uint16_t n, const char *lit) {
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static void on_playing(conn *c);

static void on_command(conn *c, const uint8_t *p, uint32_t len) {
    rd r = {p, p + len};
    const uint8_t *name;
    uint16_t nn;
    double tid;
    if (rd_string(&r, &name, &nn) < 0 || rd_number(&r, &tid) < 0) return;
    if (eq(name, nn, "_result")) {
        if (tid == 1.0 && c->state == ST_CONNECT) {
            send_create_stream(c);
        } else if (tid == 2.0 && c->state == ST_CREATE) {
            double sid;
            if (amf_skip(&r, 0) < 0 || rd_number(&r, &sid) < 0) {
                conn_fail(c, "createStream _result without a stream id");
                return;
            }
            c->stream_id = (uint32_t)sid;
            send_play(c);
        }
    } else if (eq(name, nn, "_error")) {
        conn_fail(c, c->state == ST_CONNECT ? "connect refused (_error)" : "_error reply");
    } else if (eq(name, nn, "onStatus")) {
        if (amf_skip(&r, 0) < 0 || r.p >= r.end || *r.p != 0x03) return;
        r.p++;
        const uint8_t *code = NULL, *level = NULL;
        uint16_t code_n = 0, level_n = 0;
        for (;;) {
            const uint8_t *k, *s;
            uint16_t kn, sn;
            if (rd_key(&r, &k, &kn) < 0) return;
            if (kn == 0) break;
            if (r.p < r.end && *r.p == 0x02 && (eq(k, kn, "code") || eq(k, kn, "level"))) {
                if (rd_string(&r, &s, &sn) < 0) return;
                if (k[0] == 'c') code = s, code_n = sn;
                else level = s, level_n = sn;
            } else if (amf_skip(&r, 0) < 0) {
                return;
            }
        }
        if (level && eq(level, level_n, "error")) {
            char msg[160];
            snprintf(msg, sizeof msg, "onStatus error: %.*s", (int)code_n, code ? (const char *)code : "?");
            conn_fail(c, msg);
        } else if (code && eq(code, code_n, "NetStream.Play.Start") && c->state == ST_PLAY) {
            on_playing(c);
        }
    }
}

/* -- the chunk stream (RTMP 1.0 §5.3.1) ---------------------------------------------- */

static int wants_payload(uint8_t type) { return (type >= 1 && type <= 6) || type == 20; }

static void message_done(conn *c, cstream *s) {
    uint8_t *p = s->buf; /* ours now: a failure below closes the connection, not this */
    uint32_t n = s->length;
    s->buf = NULL;
    if (trace)
        fprintf(trace, "[%u,%u,%u,%u,%u,%d,%d]\n", s->type, s->timestamp, s->length, s->csid, s->msid,
                s->got >= 1 ? s->head[0] : -1, s->got >= 2 ? s->head[1] : -1);
    switch (s->type) {
    case 1: /* Set Chunk Size (§5.4.1): the first bit MUST be zero */
        if (p && n >= 4) {
            uint32_t size = be32(p) & 0x7FFFFFFF;
            if (size == 0) conn_fail(c, "Set Chunk Size 0");
            else c->chunk_size = size;
        }
        break;
    case 4: /* User Control (§7.1.7): Ping Request (6) -> Ping Response (7) */
        if (p && n >= 6 && p[0] == 0 && p[1] == 6) {
            uint8_t pong[6] = {0, 7, p[2], p[3], p[4], p[5]};
            send_message(c, 2, 4, 0, pong, 6);
        }
        break;
    case 5: /* Window Acknowledgement Size (§5.4.4) */
        if (p && n >= 4) c->ack_window = be32(p);
        break;
    case 20:
        if (p) on_command(c, p, n);
        break;
    case 8:
    case 9:
        if (s->got >= 2 && s->head[1] == 1) {
            if (s->type == 9) {
                c->video_frames++;
                if (c->kind == K_LATENCY) {
                    if (c->nlat == c->lat_cap) {
                        c->lat_cap = c->lat_cap ? 2 * c->lat_cap : 1024;
                        c->lat = realloc(c->lat, c->lat_cap * sizeof *c->lat);
                        if (!c->lat) abort();
                    }
                    c->lat[c->nlat].ts = s->timestamp;
                    c->lat[c->nlat].t = now_cache;
                    c->nlat++;
                }
            } else {
                c->audio_frames++;
            }
        }
        break;
    default:
        break;
    }
    free(p);
}

static void payload_bytes(cstream *s, const uint8_t *p, uint32_t n) {
    if (s->got < 2) {
        uint32_t k = 2 - s->got < n ? 2 - s->got : n;
        memcpy(s->head + s->got, p, k);
    }
    if (s->buf) memcpy(s->buf + s->got, p, n);
    s->got += n;
}

/* Start reading a message of s->length bytes on chunk stream s. */
static void begin_message(cstream *s) {
    s->left = s->length;
    s->got = 0;
    s->buf = NULL;
    if (wants_payload(s->type) && s->length && s->length <= CAPTURE_MAX) {
        s->buf = malloc(s->length);
        if (!s->buf) abort();
    }
}

/* Parse one chunk header from h[0..have). Returns its size when complete (the chunk
 * stream state is then updated), 0 if more bytes are needed (nothing changed), -1 on a
 * protocol error. */
static int parse_header(conn *c, const uint8_t *h, uint32_t have) {
    static const uint8_t mh[4] = {11, 7, 3, 0};
    if (have < 1) return 0;
    uint32_t fmt = h[0] >> 6, csid = h[0] & 0x3F, i = 1;
    if (csid == 0) { /* §5.3.1.1: 2-byte form */
        if (have < 2) return 0;
        csid = 64 + h[1];
        i = 2;
    } else if (csid == 1) { /* 3-byte form */
        if (have < 3) return 0;
        csid = 64 + h[1] + ((uint32_t)h[2] << 8);
        i = 3;
    }
    int idx = -1;
    for (int k = 0; k < c->ncs; k++)
        if (c->cs[k].csid == csid) {
            idx = k;
            break;
        }
    cstream *s = idx >= 0 ? &c->cs[idx] : NULL;
    if (have < i + mh[fmt]) return 0;
    uint32_t field = fmt < 3 ? be24(h + i) : 0;
    int ext = fmt < 3 ? field == 0xFFFFFF : (s && s->ext);
    uint32_t total = i + mh[fmt] + (ext ? 4 : 0);
    if (have < total) return 0;
    if (!s) {
        /* §5.3.1.2.1: a chunk stream starts with Type 0 (a fmt 1 on csid 2 is tolerated,
         * as aiortmp's reader does) */
        if (fmt == 3 || fmt == 2 || (fmt == 1 && csid != 2)) return -1;
        if (c->ncs == MAX_CS) return -1;
        idx = c->ncs++;
        s = &c->cs[idx];
        memset(s, 0, sizeof *s);
        s->csid = csid;
    }
    if (fmt < 3) {
        if (s->left) return -1; /* a header redefining an incomplete message */
        if (ext) field = be32(h + i + mh[fmt]);
        if (fmt <= 1) {
            s->length = be24(h + i + 3);
            s->type = h[i + 6];
        }
        if (fmt == 0) {
            s->msid = le32(h + i + 7);
            s->timestamp = field;
        } else {
            s->timestamp += field;
        }
        /* §5.3.1.2.4: after a Type 0 chunk, "the timestamp delta for this Type 3 chunk is
         * the same as the timestamp of the Type 0 chunk" (as aiortmp's reader) */
        s->delta = field;
        s->ext = (uint8_t)ext;
        begin_message(s);
    } else if (!s->left) {
        s->timestamp += s->delta; /* a new message with every field repeated */
        begin_message(s);
    }
    c->cur = (int8_t)idx;
    c->chunk_left = s->left < c->chunk_size ? s->left : c->chunk_size;
    if (s->length == 0) { /* an empty message: complete with its header */
        c->cur = -1;
        message_done(c, s);
    }
    return (int)total;
}

/* Follow the chunk stream through n bytes. Returns -1 on a protocol error. */
static int feed(conn *c, const uint8_t *p, uint32_t n) {
    const uint8_t *end = p + n;
    while (p < end && c->fd >= 0) {
        if (c->cur >= 0) {
            cstream *s = &c->cs[c->cur];
            uint32_t take = c->chunk_left < (uint32_t)(end - p) ? c->chunk_left : (uint32_t)(end - p);
            payload_bytes(s, p, take);
            p += take;
            c->chunk_left -= take;
            s->left -= take;
            if (c->chunk_left == 0) {
                c->cur = -1;
                if (s->left == 0) message_done(c, s);
            }
            continue;
        }
        if (c->hdr_have == 0) {
            int r = parse_header(c, p, (uint32_t)(end - p));
            if (r < 0) return -1;
            if (r > 0) {
                p += r;
                continue;
            }
            c->hdr_have = (uint8_t)(end - p); /* under 18 bytes */
            memcpy(c->hdr, p, c->hdr_have);
            return 0;
        }
        uint32_t add = sizeof c->hdr - c->hdr_have;
        if (add > (uint32_t)(end - p)) add = (uint32_t)(end - p);
        memcpy(c->hdr + c->hdr_have, p, add);
        int r = parse_header(c, c->hdr, c->hdr_have + add);
        if (r < 0) return -1;
        if (r == 0) {
            c->hdr_have += (uint8_t)add;
            return 0;
        }
        p += (uint32_t)r - c->hdr_have;
        c->hdr_have = 0;
    }
    return 0;
}

/* -- connections --------------------------------------------------------------------- */

static int n_setup, n_playing_drain, n_failed, n_closed, n_lat_closed;
static double first_connect = -1, last_play = -1;

static void conn_close(conn *c) {
    if (c->fd >= 0) {
        close(c->fd); /* also leaves its epoll set */
        c->fd = -1;
    }
    if (c->in_tick) {
        c->in_tick = 0;
        n_in_tick--;
    }
    free(c->hs);
    c->hs = NULL;
    for (int k = 0; k < c->ncs; k++) {
        free(c->cs[k].buf);
        c->cs[k].buf = NULL;
    }
}

static void conn_fail(conn *c, const char *why) {
    if (c->state == ST_FAILED || c->state == ST_CLOSED) return;
    if (c->state == ST_PLAYING) {
        c->state = ST_CLOSED;
        if (c->kind == K_LATENCY) n_lat_closed++;
        else {
            n_closed++;
            n_playing_drain--;
        }
    } else {
        c->state = ST_FAILED;
        n_setup--;
        n_failed++;
        note_error(why);
    }
    conn_close(c);
}

static void on_playing(conn *c) {
    c->state = ST_PLAYING;
    c->t_play = now_cache;
    n_setup--;
    if (c->kind == K_DRAIN) {
        n_playing_drain++;
        if (c->t_play > last_play) last_play = c->t_play;
        if (opt.tick_s > 0) { /* from now on read in rounds */
            struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
            epoll_ctl(imm_ep, EPOLL_CTL_DEL, c->fd, NULL);
            if (epoll_ctl(tick_ep, EPOLL_CTL_ADD, c->fd, &ev) == 0) {
                c->in_tick = 1;
                n_in_tick++;
            }
        }
    }
}

static void conn_open(conn *c, int index_for_src) {
    c->state = ST_CONNECTING;
    c->cur = -1;
    c->chunk_size = 128; /* §5.4.1: the default */
    c->t_connect = mono();
    if (first_connect < 0 && c->kind == K_DRAIN) first_connect = c->t_connect;
    n_setup++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(c, errno == EMFILE || errno == ENFILE ? "socket: too many open files" : "socket failed");
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.src_addrs > 0) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7F000002u + (uint32_t)(index_for_src % opt.src_addrs));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            conn_fail(c, "bind to the source address failed");
            return;
        }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &dst.sin_addr);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        char msg[120];
        snprintf(msg, sizeof msg, "connect: %s", strerror(errno));
        conn_fail(c, msg);
        return;
    }
    c->want_out = 1;
    epoll_ctl(imm_ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_connected(conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        char msg[120];
        snprintf(msg, sizeof msg, "connect: %s", strerror(err));
        conn_fail(c, msg);
        return;
    }
    /* C0 (version 3) and C1: time, zero, 1528 random bytes (§5.2.3): a simple handshake */
    uint8_t c01[1 + HS_SIZE];
    c01[0] = 3;
    memset(c01 + 1, 0, 8);
    for (int i = 9; i < 1 + HS_SIZE; i += 8) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        memcpy(c01 + i, &rng, (1 + HS_SIZE - i) < 8 ? (size_t)(1 + HS_SIZE - i) : 8);
    }
    c->state = ST_HANDSHAKE;
    c->hs = malloc(1 + 2 * HS_SIZE);
    if (!c->hs) abort();
    c->want_out = 0;
    set_events(c);
    out_append(c, c01, sizeof c01);
    flush_out(c);
}

/* Handshake bytes; returns how many of p were consumed. */
static uint32_t on_handshake(conn *c, const uint8_t *p, uint32_t n) {
    uint32_t need = 1 + 2 * HS_SIZE - c->hs_have;
    uint32_t take = n < need ? n : need;
    memcpy(c->hs + c->hs_have, p, take);
    c->hs_have += take;
    if (c->hs_have >= 1 && c->hs[0] != 3) {
        conn_fail(c, "handshake: S0 is not version 3");
        return n;
    }
    if (!c->c2_sent && c->hs_have >= 1 + HS_SIZE) { /* C2 echoes S1 (§5.2.4) */
        out_append(c, c->hs + 1, HS_SIZE);
        c->c2_sent = 1;
        flush_out(c);
    }
    if (c->hs_have == 1 + 2 * HS_SIZE) { /* S2 is in: the session may start */
        free(c->hs);
        c->hs = NULL;
        send_connect(c);
        flush_out(c);
    }
    return take;
}

static void on_readable(conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, rx, RX_SIZE, 0);
        n_reads++;
        if (n > 0) {
            c->bytes += (uint64_t)n;
            if (c->kind == K_LATENCY || c->state != ST_PLAYING) now_cache = mono();
            uint32_t off = 0;
            if (c->state == ST_HANDSHAKE) {
                off = on_handshake(c, rx, (uint32_t)n);
                if (c->fd < 0) return;
            }
            if (off < (uint32_t)n && feed(c, rx + off, (uint32_t)n - off) < 0) {
                conn_fail(c, "chunk stream error");
                return;
            }
            if (c->fd < 0) return;
            if (c->ack_window && c->bytes - c->last_ack >= c->ack_window) send_ack(c);
            if (c->out_len) { /* replies to commands, pings, acknowledgements */
                flush_out(c);
                if (c->fd < 0) return;
            }
            if (n < RX_SIZE) return;
            continue;
        }
        if (n == 0) {
            conn_fail(c, c->state == ST_HANDSHAKE ? "closed by the server during the handshake"
                                                  : "closed by the server during setup");
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        char msg[120];
        snprintf(msg, sizeof msg, "recv: %s", strerror(errno));
        conn_fail(c, msg);
        return;
    }
}

static void on_event(struct epoll_event *ev) {
    conn *c = ev->data.ptr;
    if (c->fd < 0) return;
    if (c->state == ST_CONNECTING) {
        if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    if (c->fd >= 0 && (ev->events & EPOLLOUT)) flush_out(c);
}

/* -- reporting ------------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s < 0x20) fputc(' ', f);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void emit_ready(void) {
    int playing = 0, failed = 0;
    double *setup = malloc(sizeof(double) * (size_t)(opt.count ? opt.count : 1));
    int ns = 0;
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->kind != K_DRAIN) continue;
        failed += c->state == ST_FAILED;
        if (c->state == ST_PLAYING || c->state == ST_CLOSED) {
            playing += c->state == ST_PLAYING;
            setup[ns++] = (c->t_play - c->t_connect) * 1000.0;
        }
    }
    qsort(setup, (size_t)ns, sizeof *setup, cmp_double);
    int lat_playing = 0;
    for (int i = 0; i < nconns; i++)
        lat_playing += conns[i].kind == K_LATENCY && conns[i].state == ST_PLAYING;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("{\"event\":\"ready\",\"playing\":%d,\"failed\":%d,\"closed\":%d,\"latency_playing\":%d,"
           "\"errors\":[", playing, failed, n_closed, lat_playing);
    for (int i = 0; i < nerrors; i++) {
        if (i) putchar(',');
        json_str(stdout, errors[i]);
    }
    printf("],\"t\":%.6f,\"join_s\":%.3f,\"setup_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
           "\"rlimit_nofile\":%llu}\n",
           mono(), last_play >= 0 && first_connect >= 0 ? last_play - first_connect : -1.0,
           ns ? setup[ns / 2] : -1.0, ns ? setup[(int)((ns - 1) * 0.99 + 0.5)] : -1.0,
           ns ? setup[ns - 1] : -1.0, (unsigned long long)rl.rlim_cur);
    fflush(stdout);
    free(setup);
}

static void emit_snap(const char *event) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{");
    if (event) printf("\"event\":\"%s\",", event);
    printf("\"t\":%.6f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"reads\":%llu,\"rounds\":%llu,"
           "\"closed\":%d,\"latency_closed\":%d,\"bytes\":[",
           mono(), ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, (unsigned long long)n_reads,
           (unsigned long long)n_rounds, n_closed, n_lat_closed);
    int first = 1;
    for (int i = 0; i < nconns; i++) {
        if (conns[i].kind != K_DRAIN) continue;
        printf(first ? "%llu" : ",%llu", (unsigned long long)conns[i].bytes);
        first = 0;
    }
    printf("],\"latency\":[");
    first = 1;
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->kind != K_LATENCY) continue;
        printf(first ? "[" : ",[");
        first = 0;
        for (uint32_t k = 0; k < c->nlat; k++) printf(k ? ",[%u,%.6f]" : "[%u,%.6f]", c->lat[k].ts, c->lat[k].t);
        printf("]");
        c->nlat = 0;
    }
    printf("]");
    if (opt.frames) {
        const char *keys[3] = {"video_frames", "audio_frames", "streams"};
        for (int key = 0; key < 3; key++) {
            printf(",\"%s\":[", keys[key]);
            first = 1;
            for (int i = 0; i < nconns; i++) {
                conn *c = &conns[i];
                if (c->kind != K_DRAIN) continue;
                if (!first) putchar(',');
                first = 0;
                if (key == 2) json_str(stdout, c->stream);
                else printf("%llu", (unsigned long long)(key ? c->audio_frames : c->video_frames));
            }
            printf("]");
        }
    }
    printf("}\n");
    fflush(stdout);
}

/* -- main ------------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: drain [--host H] --port P [--app A] [--stream PREFIX] [--streams S]\n"
            "             --count N [--rate PER_S] [--latency-first A] [--latency-last B]\n"
            "             [--tick-ms T] [--src-addrs K] [--timeout S] [--frames]\n"
            "       drain --parse-file FILE [--split BYTES]   (a test of the chunk reader)\n");
    exit(2);
}

/* --parse-file: follow a server-to-client chunk stream (what comes after the handshake) from
 * a file, fed in pieces of --split bytes as reads would be, acknowledging as a player does.
 * Prints each complete message as [type, timestamp, length, csid, msid, byte0, byte1], then
 * {"chunk_size", "ack_window", "video_frames", "audio_frames", "sent": hex of what the
 * player would have sent}. Exit status 1 on a chunk stream error. */
static int parse_file(const char *path, long split) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 2;
    }
    static uint8_t data[1 << 24];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    static conn c;
    c.fd = 1 << 30; /* never used: replies are kept in c.out */
    c.state = ST_PLAYING;
    c.kind = K_DRAIN;
    c.cur = -1;
    c.chunk_size = 128;
    trace = stdout;
    int rc = 0;
    for (size_t off = 0; off < len && !rc; off += (size_t)split) {
        size_t n = len - off < (size_t)split ? len - off : (size_t)split;
        c.bytes += n;
        if (feed(&c, data + off, (uint32_t)n) < 0) rc = 1;
        else if (c.ack_window && c.bytes - c.last_ack >= c.ack_window) send_ack(&c);
    }
    printf("{\"error\":%s,\"chunk_size\":%u,\"ack_window\":%u,\"video_frames\":%llu,"
           "\"audio_frames\":%llu,\"pending_header_bytes\":%u,\"sent\":\"",
           rc ? "true" : "false", c.chunk_size, c.ack_window, (unsigned long long)c.video_frames,
           (unsigned long long)c.audio_frames, c.hdr_have);
    for (uint32_t i = 0; i < c.out_len; i++) printf("%02x", c.out[i]);
    printf("\"}\n");
    return rc;
}

static void raise_nofile(rlim_t need) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= need) return;
    if (rl.rlim_max < need) {
        struct rlimit want = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) return; /* root may raise the hard limit */
    }
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        fprintf(stderr, "drain: RLIMIT_NOFILE is %llu, %llu needed: some players will fail\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

/* Read every drain player that has data, once, so that a snapshot counts what arrived
 * until now (within the time this takes) rather than until the last round. Once: a read
 * sends an acknowledgement that may release data the server's socket held back (Nagle),
 * which makes the connection readable again at once. */
static void drain_all(void) {
    struct epoll_event batch[BATCH];
    int n, budget = n_in_tick;
    while (budget > 0 && (n = epoll_wait(tick_ep, batch, BATCH, 0)) > 0) {
        for (int i = 0; i < n; i++) on_event(&batch[i]);
        budget -= n;
        if (n < BATCH) break;
    }
}

static char stdin_buf[4096];
static size_t stdin_have;

/* Returns 1 to stop (after the answer), 2 to stop without it (EOF). */
static int on_stdin(void) {
    ssize_t n = read(0, stdin_buf + stdin_have, sizeof stdin_buf - stdin_have - 1);
    if (n <= 0) return n == 0 || (errno != EAGAIN && errno != EINTR) ? 2 : 0;
    stdin_have += (size_t)n;
    char *nl;
    while ((nl = memchr(stdin_buf, '\n', stdin_have)) != NULL) {
        *nl = 0;
        int stop = 0;
        if (strcmp(stdin_buf, "snap") == 0) {
            drain_all();
            emit_snap(NULL);
        } else if (strcmp(stdin_buf, "stop") == 0) {
            drain_all();
            stop = 1;
        }
        else printf("{\"error\":\"unknown command\"}\n"), fflush(stdout);
        size_t used = (size_t)(nl - stdin_buf) + 1;
        memmove(stdin_buf, nl + 1, stdin_have - used);
        stdin_have -= used;
        if (stop) return 1;
    }
    if (stdin_have == sizeof stdin_buf - 1) stdin_have = 0; /* a line too long: drop it */
    return 0;
}

static void scan_timeouts(double now) {
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->state >= ST_CONNECTING && c->state < ST_PLAYING && now - c->t_connect > opt.timeout_s)
            conn_fail(c, "setup timed out");
    }
}

static struct epoll_event evs[BATCH];

static int poll_imm(int timeout_ms) {
    int n = epoll_wait(imm_ep, evs, BATCH, timeout_ms);
    int stop = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            int r = on_stdin();
            if (r) stop = r;
        } else {
            on_event(&evs[i]);
        }
    }
    return stop;
}

/* One round over the drain players with data: a bounded number of reads, so that data
 * arriving during the round waits for the next one; the latency players are served
 * between batches. */
static int drain_round(void) {
    int budget = n_in_tick;
    n_rounds++;
    while (budget > 0) {
        struct epoll_event batch[BATCH];
        int n = epoll_wait(tick_ep, batch, BATCH, 0);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) on_event(&batch[i]);
        budget -= n;
        int stop = poll_imm(0);
        if (stop) return stop;
        if (n < BATCH) break;
    }
    return 0;
}

int main(int argc, char **argv) {
    static struct option longopts[] = {
        {"host", required_argument, 0, 'h'},       {"port", required_argument, 0, 'p'},
        {"app", required_argument, 0, 'a'},        {"stream", required_argument, 0, 's'},
        {"streams", required_argument, 0, 'S'},    {"count", required_argument, 0, 'n'},
        {"rate", required_argument, 0, 'r'},       {"latency-first", required_argument, 0, 'f'},
        {"latency-last", required_argument, 0, 'l'}, {"tick-ms", required_argument, 0, 't'},
        {"src-addrs", required_argument, 0, 'k'},  {"timeout", required_argument, 0, 'T'},
        {"frames", no_argument, 0, 'F'},           {"parse-file", required_argument, 0, 'P'},
        {"split", required_argument, 0, 'x'},      {0, 0, 0, 0}};
    const char *parse_path = NULL;
    long split = 1 << 20;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'a': opt.app = optarg; break;
        case 's': opt.prefix = optarg; break;
        case 'S': opt.streams = atoi(optarg); break;
        case 'n': opt.count = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'f': opt.lat_first = atoi(optarg); break;
        case 'l': opt.lat_last = atoi(optarg); break;
        case 't': opt.tick_s = atof(optarg) / 1000.0; break;
        case 'k': opt.src_addrs = atoi(optarg); break;
        case 'T': opt.timeout_s = atof(optarg); break;
        case 'F': opt.frames = 1; break;
        case 'P': parse_path = optarg; break;
        case 'x': split = atol(optarg); break;
        default: usage();
        }
    }
    if (parse_path) return parse_file(parse_path, split > 0 ? split : 1);
    if (opt.port <= 0 || opt.count < 0 || opt.streams < 1 || opt.rate <= 0 || opt.src_addrs > 250) usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    snprintf(tc_url, sizeof tc_url, "rtmp://%s:%d/%s", opt.host, opt.port, opt.app);
    nconns = opt.lat_first + opt.count + opt.lat_last;
    raise_nofile((rlim_t)nconns + 64);
    conns = calloc((size_t)(nconns ? nconns : 1), sizeof *conns);
    names = calloc((size_t)opt.streams, sizeof *names);
    if (!conns || !names) abort();
    for (int i = 0; i < opt.streams; i++) {
        names[i] = malloc(strlen(opt.prefix) + 12);
        sprintf(names[i], "%s%d", opt.prefix, i);
    }
    for (int i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        c->fd = -1;
        c->cur = -1;
        int drain = i >= opt.lat_first && i < opt.lat_first + opt.count;
        c->kind = drain ? K_DRAIN : K_LATENCY;
        c->stream = drain ? names[(i - opt.lat_first) % opt.streams] : names[0];
    }
    imm_ep = epoll_create1(EPOLL_CLOEXEC);
    tick_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(imm_ep, EPOLL_CTL_ADD, 0, &sev);

    /* Phases: 0 latency-first players join; 1 the drain players join at --rate; 2 the
     * latency-last players join; 3 ready. */
    int phase = 0, opened = 0, stop = 0;
    double t_phase = mono(), next_tick = 0, last_scan = 0;
    for (int i = 0; i < opt.lat_first; i++) conn_open(&conns[i], i);
    while (!stop) {
        double now = mono();
        if (phase == 0 && n_setup == 0) {
            phase = 1;
            t_phase = now;
        }
        if (phase == 1) {
            while (opened < opt.count && t_phase + opened / opt.rate <= now) {
                conn_open(&conns[opt.lat_first + opened], opened);
                opened++;
            }
            if (opened == opt.count && n_setup == 0) {
                phase = 2;
                for (int i = opt.lat_first + opt.count; i < nconns; i++) conn_open(&conns[i], i);
            }
        }
        if (phase == 2 && n_setup == 0) {
            phase = 3;
            emit_ready();
        }
        if (now - last_scan > 0.25) {
            scan_timeouts(now);
            last_scan = now;
        }
        double wake = now + 0.25;
        if (phase == 1 && opened < opt.count && t_phase + opened / opt.rate < wake) wake = t_phase + opened / opt.rate;
        if (opt.tick_s > 0 && n_in_tick && next_tick < wake) wake = next_tick;
        int ms = (int)ceil((wake - now) * 1000.0);
        stop = poll_imm(ms < 0 ? 0 : ms);
        if (!stop && opt.tick_s > 0 && n_in_tick) {
            double t = mono();
            if (t >= next_tick) {
                stop = drain_round();
                next_tick = t + opt.tick_s;
            }
        }
    }
    if (stop == 1) emit_snap("stopped");
    for (int i = 0; i < nconns; i++) conn_close(&conns[i]);
    return 0;
}
