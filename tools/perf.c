/*
 * perf.c - gregor-perf, the load generator: produces or consumes records as
 * fast as it can (or at a target rate) and reports throughput and latency.
 *
 *   gregor-perf produce -b HOST:PORT -t TOPIC [--create -p PARTITIONS]
 *       [-n MESSAGES | --seconds S] [-s RECORD_SIZE] [--batch-bytes B]
 *       [--linger-ms L] [--acks 0|1|-1|all] [-z none|gzip|snappy|lz4|zstd]
 *       [--rate MSGS_PER_S] [--inflight N]
 *   gregor-perf consume -b HOST:PORT -t TOPIC [-n MESSAGES] [--from-beginning]
 *       [--fetch-bytes B]
 *
 * Design
 * ------
 * Metadata names each partition's leader; there is one gr_kclient per leader
 * broker, all on one event loop. The producer builds one record batch per
 * partition per request (records go round-robin over the partitions a
 * broker leads, so every partition gets the same share) and keeps up to
 * --inflight Produce requests pipelined on each connection. Flat out, a
 * request is sent whenever a slot frees; with --rate, records become due at
 * the rate and a timer (every --linger-ms, at least 1 ms) sends what is due,
 * in batches of at most --batch-bytes.
 *
 * Latency is measured per request, from handing it to the client to its
 * acknowledgement, and counted once for every record it carried, into a
 * log-linear histogram (exact below 64 us, then 32 buckets per power of two:
 * about 3% resolution). The maximum is kept exactly.
 *
 * The consumer keeps one Fetch in flight per leader broker, for all the
 * partitions that broker leads, and counts records and value bytes by
 * iterating every record (decompressing as needed), as a real consumer
 * would. It stops after -n records, or, without -n, when every partition has
 * reached the end offset it had when the run started.
 *
 * acks=0 (fire and forget)
 * ------------------------
 * A Produce with acks=0 gets no response, and gr_kclient matches every
 * request to one, so acks=0 requests go over a second, raw connection per
 * broker that is only written to. The client's connection still negotiates
 * the Produce version. Instead of --inflight requests, at most
 * --inflight x --batch-bytes (at least 1 MiB) may wait unsent in that
 * connection's output buffer; when it drains to half, more is sent. As in
 * Kafka, a broker that cannot append an acks=0 produce closes the
 * connection: any close or any byte read before the end ends the run with
 * an error. When every record is written, one ApiVersions request follows
 * on the same connection; a broker answers a connection's requests in
 * order, so its answer says the broker has read and handled every produce
 * before it without closing. Records count as produced then. Latency has no
 * meaning without acknowledgements and is printed as n/a.
 *
 * MB means 2^20 bytes of record values. Progress goes to stderr once a
 * second; the final line goes to stdout. Any Kafka error ends the run with
 * its name and a non-zero exit.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/errors.h"
#include "common/kclient.h"
#include "proto/messages.h"

#define CALL_TIMEOUT_MS 15000
#define REQUEST_TIMEOUT_MS 30000
#define MAX_UNCOMPRESSED (256u * 1024 * 1024)
#define MB (1024.0 * 1024.0)

/* ---- small helpers ---- */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gregor-perf: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory");
    return p;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t parse_int(const char *flag, const char *s, int64_t lo, int64_t hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: '%s' is not a number in [%" PRId64 ", %" PRId64 "]", flag, s, lo, hi);
    return v;
}

/* ---- latency histogram ---- */

#define H_LINEAR 64
#define H_SUB 32
#define H_BUCKETS (H_LINEAR + 58 * H_SUB)

typedef struct {
    uint64_t count[H_BUCKETS];
    uint64_t total;
    int64_t max;
} histogram;

static int h_index(int64_t v)
{
    if (v < H_LINEAR)
        return v < 0 ? 0 : (int)v;
    int e = 63 - __builtin_clzll((unsigned long long)v); /* >= 6 */
    int shift = e - 5;
    return H_LINEAR + (e - 6) * H_SUB + (int)((v >> shift) - H_SUB);
}

/* The upper bound of bucket i (a value in it is at most this). */
static int64_t h_upper(int i)
{
    if (i < H_LINEAR)
        return i;
    int e = (i - H_LINEAR) / H_SUB + 6;
    int sub = (i - H_LINEAR) % H_SUB;
    int shift = e - 5;
    return (((int64_t)(H_SUB + sub + 1)) << shift) - 1;
}

static void h_add(histogram *h, int64_t v, uint64_t n)
{
    h->count[h_index(v)] += n;
    h->total += n;
    if (v > h->max)
        h->max = v;
}

static int64_t h_quantile(const histogram *h, double q)
{
    if (!h->total)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->total);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want) {
            int64_t u = h_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

/* ---- options ---- */

typedef struct {
    bool produce;
    char *host;
    int port;
    const char *topic;
    bool create;
    int32_t partitions;
    int64_t messages;   /* -1: not given */
    double seconds;     /* 0: not given */
    int32_t record_size;
    int32_t batch_bytes;
    int32_t linger_ms;
    int16_t acks;
    gr_codec codec;
    double rate;        /* 0: flat out */
    int inflight;
    bool from_beginning;
    int32_t fetch_bytes;
} options;

static void usage(void)
{
    fputs("usage:\n"
          "  gregor-perf produce -b HOST:PORT -t TOPIC [--create -p PARTITIONS]\n"
          "      [-n MESSAGES | --seconds S] [-s RECORD_SIZE] [--batch-bytes B]\n"
          "      [--linger-ms L] [--acks 0|1|-1|all] [-z none|gzip|snappy|lz4|zstd]\n"
          "      [--rate MSGS_PER_S] [--inflight N]\n"
          "  gregor-perf consume -b HOST:PORT -t TOPIC [-n MESSAGES] [--from-beginning]\n"
          "      [--fetch-bytes B]\n",
          stderr);
    exit(2);
}

static void parse_args(options *o, int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (!strcmp(argv[1], "produce"))
        o->produce = true;
    else if (strcmp(argv[1], "consume"))
        usage();
    o->partitions = 1;
    o->messages = -1;
    o->record_size = 100;
    o->batch_bytes = 16384;
    o->acks = 1;
    o->codec = GR_CODEC_NONE;
    o->inflight = 5;
    o->fetch_bytes = 4 * 1024 * 1024;
    const char *bootstrap = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                   \
    do {                                         \
        if (!v)                                  \
            die("%s needs a value", a);          \
        i++;                                     \
    } while (0)
        if (!strcmp(a, "-b") || !strcmp(a, "--bootstrap-server")) {
            NEED();
            bootstrap = v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--topic")) {
            NEED();
            o->topic = v;
        } else if (!strcmp(a, "--create")) {
            o->create = true;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--partitions")) {
            NEED();
            o->partitions = (int32_t)parse_int(a, v, 1, 100000);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--messages")) {
            NEED();
            o->messages = parse_int(a, v, 1, INT64_MAX / 2);
        } else if (!strcmp(a, "--seconds")) {
            NEED();
            o->seconds = strtod(v, NULL);
            if (!(o->seconds > 0))
                die("--seconds: '%s' is not a positive number", v);
        } else if (!strcmp(a, "-s") || !strcmp(a, "--record-size")) {
            NEED();
            o->record_size = (int32_t)parse_int(a, v, 0, 64 * 1024 * 1024);
        } else if (!strcmp(a, "--batch-bytes")) {
            NEED();
            o->batch_bytes = (int32_t)parse_int(a, v, 1, 64 * 1024 * 1024);
        } else if (!strcmp(a, "--linger-ms")) {
            NEED();
            o->linger_ms = (int32_t)parse_int(a, v, 0, 60000);
        } else if (!strcmp(a, "--acks")) {
            NEED();
            if (!strcmp(v, "all") || !strcmp(v, "-1"))
                o->acks = -1;
            else if (!strcmp(v, "1"))
                o->acks = 1;
            else if (!strcmp(v, "0"))
                o->acks = 0;
            else
                die("--acks: '%s' is not 0, 1, -1 or all", v);
        } else if (!strcmp(a, "-z") || !strcmp(a, "--compression")) {
            NEED();
            static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
            int k = 0;
            while (k < 5 && strcmp(names[k], v))
                k++;
            if (k == 5)
                die("-z: unknown codec '%s'", v);
            o->codec = (gr_codec)k;
        } else if (!strcmp(a, "--rate")) {
            NEED();
            o->rate = strtod(v, NULL);
            if (!(o->rate > 0))
                die("--rate: '%s' is not a positive number", v);
        } else if (!strcmp(a, "--inflight")) {
            NEED();
            o->inflight = (int)parse_int(a, v, 1, 1000);
        } else if (!strcmp(a, "--from-beginning")) {
            o->from_beginning = true;
        } else if (!strcmp(a, "--fetch-bytes")) {
            NEED();
            o->fetch_bytes = (int32_t)parse_int(a, v, 1024, 64 * 1024 * 1024);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
        } else {
            die("unknown argument '%s'", a);
        }
#undef NEED
    }
    if (!bootstrap || !o->topic)
        die("-b HOST:PORT and -t TOPIC are required");
    const char *colon = strrchr(bootstrap, ':');
    if (!colon || colon == bootstrap)
        die("-b: '%s' is not HOST:PORT", bootstrap);
    o->host = xcalloc(1, (size_t)(colon - bootstrap) + 1);
    memcpy(o->host, bootstrap, (size_t)(colon - bootstrap));
    o->port = (int)parse_int("-b port", colon + 1, 1, 65535);
    if (o->produce && o->messages < 0 && o->seconds == 0)
        o->messages = 1000000;
    if (o->messages > 0 && o->seconds > 0)
        die("give -n or --seconds, not both");
}

/* ---- cluster layout ---- */

typedef struct broker broker;

typedef struct {
    int32_t id;
    broker *leader;
    int64_t offset;   /* consume: next offset to fetch */
    int64_t end;      /* consume: end offset when the run started */
} partition;

struct broker {
    int32_t node_id;
    char host[256];
    int port;
    gr_kclient *client;
    int32_t *parts;   /* indexes into the partition table */
    int32_t nparts;
    int32_t rr;       /* next partition (index into parts) to get a record */
    int inflight;
    int16_t version;
    /* acks=0 only: the write-only connection and its end-of-run check. */
    struct bufferevent *raw;
    int32_t raw_corr;       /* next correlation id on it */
    int32_t marker_corr;    /* the closing ApiVersions's; -1 when none awaited */
    bool marker_sent;
    int64_t raw_records;    /* records written on it */
};

typedef struct {
    options o;
    struct event_base *base;
    partition *parts;
    int32_t nparts;
    broker *brokers;
    int32_t nbrokers;
    bool connecting_failed;
    int connected;

    /* produce */
    uint8_t *value;
    gr_record_spec *specs;
    int32_t batch_records;
    int64_t sent;        /* records handed to requests */
    int64_t acked;
    int64_t deadline_us; /* --seconds: stop sending after this */
    bool sending_done;
    histogram hist;

    /* consume */
    int64_t consumed;
    int64_t consumed_bytes;
    int fetching;

    int64_t start_us;
    int64_t last_us;
    int64_t last_count;
    struct event *tick;
    struct event *pacer;
} perf;

/* The one run of this process (callbacks that get a broker find it here). */
static perf g_perf;

static const char *kerr(int16_t code) { return gr_kafka_error_name(code); }

static void call_or_die(perf *p, int16_t key, const void *req, void **resp, gr_arena *a,
                        const char *what)
{
    int err = gr_kclient_call(p->o.host, p->o.port, key, -1, req, CALL_TIMEOUT_MS, a, resp, NULL);
    if (err)
        die("%s to %s:%d failed: %s", what, p->o.host, p->o.port, gr_kclient_strerror(err));
}

static void create_topic(perf *p)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_create_topics_request_creatable_topic t;
    gr_create_topics_request_creatable_topic_init(&t);
    t.name = gr_str_from(p->o.topic);
    t.num_partitions = p->o.partitions;
    t.replication_factor = 1;
    gr_create_topics_request req;
    gr_create_topics_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    req.timeout_ms = CALL_TIMEOUT_MS;
    gr_create_topics_response *resp = NULL;
    call_or_die(p, GR_API_CREATE_TOPICS, &req, (void **)&resp, &a, "CreateTopics");
    for (int i = 0; i < resp->topics_count; i++) {
        int16_t ec = resp->topics[i].error_code;
        if (ec != GR_NONE && ec != GR_TOPIC_ALREADY_EXISTS)
            die("creating topic %s: %s", p->o.topic, kerr(ec));
    }
    gr_arena_free(&a);
}

/* Waits (up to 15 s) until Metadata shows a leader for every partition of
 * the topic, then fills the partition and broker tables. */
static void load_metadata(perf *p)
{
    int64_t give_up = now_us() + 15000000;
    for (;;) {
        gr_arena a;
        gr_arena_init(&a);
        gr_metadata_request_topic rt;
        gr_metadata_request_topic_init(&rt);
        rt.name = gr_str_from(p->o.topic);
        gr_metadata_request req;
        gr_metadata_request_init(&req);
        req.topics = &rt;
        req.topics_count = 1;
        req.allow_auto_topic_creation = false;
        gr_metadata_response *resp = NULL;
        call_or_die(p, GR_API_METADATA, &req, (void **)&resp, &a, "Metadata");
        int16_t problem = GR_UNKNOWN_TOPIC_OR_PARTITION;
        const gr_metadata_response_topic *t = NULL;
        for (int i = 0; i < resp->topics_count; i++)
            if (resp->topics[i].name.len >= 0 && gr_str_eq(resp->topics[i].name, p->o.topic))
                t = &resp->topics[i];
        if (t) {
            problem = t->error_code;
            if (problem == GR_NONE && t->partitions_count == 0)
                problem = GR_LEADER_NOT_AVAILABLE;
            for (int i = 0; problem == GR_NONE && i < t->partitions_count; i++) {
                if (t->partitions[i].error_code != GR_NONE)
                    problem = t->partitions[i].error_code;
                else if (t->partitions[i].leader_id < 0)
                    problem = GR_LEADER_NOT_AVAILABLE;
            }
        }
        if (problem == GR_NONE) {
            p->nparts = t->partitions_count;
            p->parts = xcalloc((size_t)p->nparts, sizeof *p->parts);
            p->brokers = xcalloc((size_t)resp->brokers_count, sizeof *p->brokers);
            for (int i = 0; i < p->nparts; i++) {
                const gr_metadata_response_partition *mp = &t->partitions[i];
                broker *b = NULL;
                for (int k = 0; k < p->nbrokers; k++)
                    if (p->brokers[k].node_id == mp->leader_id)
                        b = &p->brokers[k];
                if (!b) {
                    const gr_metadata_response_broker *mb = NULL;
                    for (int k = 0; k < resp->brokers_count; k++)
                        if (resp->brokers[k].node_id == mp->leader_id)
                            mb = &resp->brokers[k];
                    if (!mb || mb->host.len <= 0 || mb->host.len >= 256)
                        die("partition %d: leader %d is not among the brokers",
                            mp->partition_index, mp->leader_id);
                    b = &p->brokers[p->nbrokers++];
                    b->node_id = mb->node_id;
                    memcpy(b->host, mb->host.ptr, (size_t)mb->host.len);
                    b->port = mb->port;
                    b->parts = xcalloc((size_t)p->nparts, sizeof *b->parts);
                }
                p->parts[i].id = mp->partition_index;
                p->parts[i].leader = b;
                b->parts[b->nparts++] = i;
            }
            gr_arena_free(&a);
            return;
        }
        gr_arena_free(&a);
        bool retriable = problem == GR_LEADER_NOT_AVAILABLE ||
                         (problem == GR_UNKNOWN_TOPIC_OR_PARTITION && p->o.create);
        if (!retriable || now_us() > give_up)
            die("topic %s: %s", p->o.topic, kerr(problem));
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void on_connected(void *arg, int err, gr_reader *body)
{
    (void)body;
    broker *b = arg;
    if (err)
        die("connecting to broker %d at %s:%d: %s", b->node_id, b->host, b->port,
            gr_kclient_strerror(err));
}

/* ---- acks=0: a write-only connection per broker ---- */

#define RAW_QUEUE_MIN (1024 * 1024)
/* The closing ApiVersions answer is small; anything larger is not it. */
#define RAW_MAX_ANSWER (1024 * 1024)

static void pump(perf *p);
static void finish_if_done(perf *p);

/* Bytes that may wait unsent on a raw connection before sending pauses. */
static size_t raw_queue_cap(const perf *p)
{
    size_t cap = (size_t)p->o.inflight * (size_t)p->o.batch_bytes;
    return cap < RAW_QUEUE_MIN ? RAW_QUEUE_MIN : cap;
}

/* Room for another Produce to b: a free in-flight slot, or for acks=0
 * room in the raw connection's output buffer. */
static bool can_send(const perf *p, const broker *b)
{
    if (p->o.acks != 0)
        return b->inflight < p->o.inflight;
    return evbuffer_get_length(bufferevent_get_output(b->raw)) < raw_queue_cap(p);
}

static void free_frame(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Queues one request (size, header, body) on b's raw connection; returns
 * its correlation id. */
static int32_t raw_send(broker *b, int16_t key, int16_t version, const void *msg)
{
    int32_t corr = b->raw_corr;
    b->raw_corr = b->raw_corr == INT32_MAX ? 0 : b->raw_corr + 1;
    uint8_t *frame;
    size_t len;
    int rc = gr_kclient_encode_frame(key, version, corr, "gregor-perf", msg, &frame, &len);
    if (rc != GR_OK)
        die("encoding a request for broker %d failed: %s", b->node_id, gr_kclient_strerror(rc));
    if (evbuffer_add_reference(bufferevent_get_output(b->raw), frame, len, free_frame, NULL))
        die("out of memory");
    return corr;
}

/* After the last produce: the request whose answer confirms the rest. */
static void raw_send_marker(broker *b)
{
    gr_api_versions_request req;
    gr_api_versions_request_init(&req);
    b->marker_corr = raw_send(b, GR_API_API_VERSIONS, 0, &req);
    b->inflight++;
}

/* The only bytes a raw connection may carry back are the answer to the
 * closing ApiVersions. */
static void on_raw_read(struct bufferevent *bev, void *arg)
{
    broker *b = arg;
    perf *p = &g_perf;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (b->marker_corr < 0)
        die("broker %d answered an acks=0 Produce", b->node_id);
    uint8_t size_be[4];
    if (evbuffer_copyout(in, size_be, 4) < 4)
        return;
    uint32_t size = (uint32_t)size_be[0] << 24 | (uint32_t)size_be[1] << 16 |
                    (uint32_t)size_be[2] << 8 | size_be[3];
    if (size > RAW_MAX_ANSWER)
        die("broker %d: a %" PRIu32 "-byte answer on the acks=0 connection", b->node_id, size);
    if (evbuffer_get_length(in) < 4 + (size_t)size)
        return;
    const uint8_t *frame = evbuffer_pullup(in, 4 + (ssize_t)size);
    if (!frame)
        die("out of memory");
    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, frame + 4, size);
    gr_response_header h;
    gr_api_versions_response resp;
    if (gr_response_header_decode(&h, &r, gr_response_header_version(GR_API_API_VERSIONS, 0), &a) ||
        h.correlation_id != b->marker_corr ||
        gr_api_versions_response_decode(&resp, &r, 0, &a))
        die("broker %d: the answer on the acks=0 connection is not the ApiVersions response "
            "expected", b->node_id);
    if (resp.error_code != GR_NONE)
        die("ApiVersions to broker %d: %s", b->node_id, kerr(resp.error_code));
    gr_arena_free(&a);
    evbuffer_drain(in, 4 + (size_t)size);
    b->marker_corr = -1;
    b->inflight--;
    p->acked += b->raw_records;
    finish_if_done(p);
}

static void on_raw_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)arg;
    perf *p = &g_perf;
    pump(p);
    finish_if_done(p);
}

static void on_raw_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    broker *b = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    /* As Kafka, the broker answers a failed acks=0 produce by closing. */
    die("broker %d at %s:%d closed the acks=0 connection after %" PRId64 " records were "
        "written (a broker does so when it cannot append an acks=0 produce; its log says why)",
        b->node_id, b->host, b->port, b->raw_records);
}

static void raw_connect(perf *p, broker *b)
{
    b->marker_corr = -1;
    b->raw = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!b->raw)
        die("out of memory");
    bufferevent_setcb(b->raw, on_raw_read, on_raw_written, on_raw_event, b);
    bufferevent_setwatermark(b->raw, EV_WRITE, raw_queue_cap(p) / 2, 0);
    if (bufferevent_enable(b->raw, EV_READ | EV_WRITE))
        die("out of memory");
    /* No DNS base: the name is resolved here, blocking, as gr_kclient does. */
    if (bufferevent_socket_connect_hostname(b->raw, NULL, AF_UNSPEC, b->host, b->port))
        die("connecting to broker %d at %s:%d failed", b->node_id, b->host, b->port);
}

static void connect_all(perf *p)
{
    for (int i = 0; i < p->nbrokers; i++) {
        broker *b = &p->brokers[i];
        b->client = gr_kclient_new(p->base, b->host, b->port, "gregor-perf");
        if (!b->client || gr_kclient_connect(b->client, CALL_TIMEOUT_MS, on_connected, b))
            die("out of memory");
    }
    /* Run the loop until every client has negotiated. */
    for (;;) {
        int ready = 0;
        for (int i = 0; i < p->nbrokers; i++)
            ready += gr_kclient_connected(p->brokers[i].client);
        if (ready == p->nbrokers)
            break;
        event_base_loop(p->base, EVLOOP_ONCE);
    }
    if (p->o.produce && p->o.acks == 0)
        for (int i = 0; i < p->nbrokers; i++)
            raw_connect(p, &p->brokers[i]);
}

/* ---- progress ---- */

static int64_t progress_count(perf *p)
{
    if (!p->o.produce)
        return p->consumed;
    return p->o.acks == 0 ? p->sent : p->acked;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    perf *p = arg;
    int64_t t = now_us();
    int64_t n = progress_count(p);
    double dt = (double)(t - p->last_us) / 1e6;
    double rate = dt > 0 ? (double)(n - p->last_count) / dt : 0;
    double bytes_rate = p->o.produce ? rate * p->o.record_size
                                     : (p->consumed ? rate * ((double)p->consumed_bytes /
                                                              (double)p->consumed)
                                                    : 0);
    if (p->o.produce && p->o.acks == 0)
        fprintf(stderr, "produce: %" PRId64 " msgs sent (acks=0), %.0f msgs/s, %.1f MB/s\n", n,
                rate, bytes_rate / MB);
    else if (p->o.produce)
        fprintf(stderr,
                "produce: %" PRId64 " msgs acked, %.0f msgs/s, %.1f MB/s, latency ms p50 %.1f "
                "p99 %.1f max %.1f\n",
                n, rate, bytes_rate / MB, (double)h_quantile(&p->hist, 0.5) / 1000.0,
                (double)h_quantile(&p->hist, 0.99) / 1000.0, (double)p->hist.max / 1000.0);
    else
        fprintf(stderr, "consume: %" PRId64 " msgs, %.0f msgs/s, %.1f MB/s\n", n, rate,
                bytes_rate / MB);
    p->last_us = t;
    p->last_count = n;
}

/* ---- produce ---- */

typedef struct {
    perf *p;
    broker *b;
    int64_t sent_us;
    int64_t records;
} produce_ctx;

static void finish_if_done(perf *p)
{
    bool done = p->sending_done;
    if (done && p->o.acks == 0)
        for (int i = 0; i < p->nbrokers; i++)
            if (!p->brokers[i].marker_sent) {
                p->brokers[i].marker_sent = true;
                raw_send_marker(&p->brokers[i]);
            }
    for (int i = 0; done && i < p->nbrokers; i++)
        done = p->brokers[i].inflight == 0;
    if (done)
        event_base_loopbreak(p->base);
}

static void on_produced(void *arg, int err, gr_reader *body)
{
    produce_ctx *ctx = arg;
    perf *p = ctx->p;
    broker *b = ctx->b;
    if (err)
        die("Produce to broker %d at %s:%d failed: %s", b->node_id, b->host, b->port,
            gr_kclient_strerror(err));
    gr_arena a;
    gr_arena_init(&a);
    gr_produce_response resp;
    if (gr_produce_response_decode(&resp, body, b->version, &a))
        die("Produce response from broker %d does not decode", b->node_id);
    for (int i = 0; i < resp.responses_count; i++)
        for (int k = 0; k < resp.responses[i].partition_responses_count; k++) {
            const gr_produce_response_partition_produce_response *pr =
                &resp.responses[i].partition_responses[k];
            if (pr->error_code != GR_NONE)
                die("Produce to %s-%d: %s", p->o.topic, pr->index, kerr(pr->error_code));
        }
    gr_arena_free(&a);
    h_add(&p->hist, now_us() - ctx->sent_us, (uint64_t)ctx->records);
    p->acked += ctx->records;
    b->inflight--;
    free(ctx);
    pump(p);
    finish_if_done(p);
}

/* Records that may be sent now: the rest of -n, the records due by the
 * rate so far, or unbounded. */
static int64_t sendable(perf *p, int64_t t)
{
    if (p->sending_done)
        return 0;
    if (p->deadline_us && t >= p->deadline_us) {
        p->sending_done = true;
        return 0;
    }
    int64_t n = INT64_MAX;
    if (p->o.messages > 0)
        n = p->o.messages - p->sent;
    if (p->o.rate > 0) {
        int64_t due = (int64_t)((double)(t - p->start_us) / 1e6 * p->o.rate) + 1 - p->sent;
        if (due < n)
            n = due;
    }
    if (n <= 0 && p->o.messages > 0 && p->sent >= p->o.messages)
        p->sending_done = true;
    return n < 0 ? 0 : n;
}

/* Sends one Produce to b carrying up to budget records (one batch per
 * partition that gets any). */
static void send_produce(perf *p, broker *b, int64_t budget)
{
    int32_t per_req_max = p->batch_records * b->nparts;
    int64_t total = budget < per_req_max ? budget : per_req_max;
    int32_t *counts = xcalloc((size_t)b->nparts, sizeof *counts);
    for (int64_t r = 0; r < total; r++) {
        counts[b->rr]++;
        b->rr = (b->rr + 1) % b->nparts;
    }
    gr_produce_request_partition_produce_data *pd = xcalloc((size_t)b->nparts, sizeof *pd);
    gr_writer *w = xcalloc((size_t)b->nparts, sizeof *w);
    int32_t npd = 0;
    int64_t ts = wall_ms();
    for (int i = 0; i < b->nparts; i++) {
        if (!counts[i])
            continue;
        for (int32_t r = 0; r < counts[i]; r++) {
            p->specs[r].timestamp = ts;
            p->specs[r].offset_delta = r;
        }
        gr_batch_spec spec = {.base_offset = 0, .partition_leader_epoch = -1,
                              .codec = p->o.codec, .producer_id = -1, .producer_epoch = -1,
                              .base_sequence = -1};
        gr_writer_init(&w[npd], (size_t)counts[i] * ((size_t)p->o.record_size + 16) + 128);
        if (gr_batch_build(&w[npd], &spec, p->specs, counts[i]) || !gr_writer_ok(&w[npd]))
            die("building a record batch failed");
        gr_produce_request_partition_produce_data_init(&pd[npd]);
        pd[npd].index = p->parts[b->parts[i]].id;
        pd[npd].records = (gr_bytes){w[npd].p, (int32_t)w[npd].len};
        npd++;
    }
    gr_produce_request_topic_produce_data td;
    gr_produce_request_topic_produce_data_init(&td);
    td.name = gr_str_from(p->o.topic);
    td.partition_data = pd;
    td.partition_data_count = npd;
    gr_produce_request req;
    gr_produce_request_init(&req);
    req.acks = p->o.acks;
    req.timeout_ms = REQUEST_TIMEOUT_MS;
    req.topic_data = &td;
    req.topic_data_count = 1;
    if (p->o.acks == 0) {
        raw_send(b, GR_API_PRODUCE, b->version, &req);
        b->raw_records += total;
    } else {
        produce_ctx *ctx = xcalloc(1, sizeof *ctx);
        ctx->p = p;
        ctx->b = b;
        ctx->records = total;
        ctx->sent_us = now_us();
        int err = gr_kclient_send(b->client, GR_API_PRODUCE, b->version, &req,
                                  REQUEST_TIMEOUT_MS, on_produced, ctx);
        if (err)
            die("Produce to broker %d: %s", b->node_id, gr_kclient_strerror(err));
        b->inflight++;
    }
    for (int i = 0; i < npd; i++)
        gr_writer_free(&w[i]);
    free(w);
    free(pd);
    free(counts);
    p->sent += total;
}

/* Fills free in-flight slots with what may be sent. Flat out, every slot is
 * filled with full batches; with a rate, only what is due goes, and the
 * pacer comes back for the rest. */
static void pump(perf *p)
{
    int64_t t = now_us();
    bool progress = true;
    while (progress) {
        progress = false;
        for (int i = 0; i < p->nbrokers; i++) {
            broker *b = &p->brokers[i];
            if (!can_send(p, b))
                continue;
            int64_t n = sendable(p, t);
            if (n <= 0)
                return;
            /* With --linger-ms, a partial batch waits for the pacer unless
             * it is the tail of -n. */
            int64_t full = (int64_t)p->batch_records * b->nparts;
            bool tail = p->o.messages > 0 && p->o.messages - p->sent <= n;
            if (p->o.rate > 0 && p->o.linger_ms > 0 && n < full && !tail)
                continue;
            send_produce(p, b, n);
            progress = true;
        }
    }
}

static void on_pacer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    perf *p = arg;
    int64_t t = now_us();
    /* The pacer sends what is due even if it makes a partial batch. */
    for (int i = 0; i < p->nbrokers; i++) {
        broker *b = &p->brokers[i];
        int64_t n;
        while (can_send(p, b) && (n = sendable(p, t)) > 0)
            send_produce(p, b, n);
    }
    sendable(p, t);
    finish_if_done(p);
}

static int run_produce(perf *p)
{
    p->value = xcalloc(1, (size_t)p->o.record_size);
    /* Random capital letters: compressible about as much as typical text. */
    uint32_t x = 2463534242u;
    for (int32_t i = 0; i < p->o.record_size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p->value[i] = (uint8_t)('A' + x % 26);
    }
    p->batch_records = p->o.batch_bytes / (p->o.record_size + 8);
    if (p->batch_records < 1)
        p->batch_records = 1;
    p->specs = xcalloc((size_t)p->batch_records, sizeof *p->specs);
    for (int32_t i = 0; i < p->batch_records; i++) {
        p->specs[i].key = GR_BYTES_NULL;
        p->specs[i].value = (gr_bytes){p->value, p->o.record_size};
    }
    for (int i = 0; i < p->nbrokers; i++) {
        broker *b = &p->brokers[i];
        b->version = gr_kclient_version(b->client, GR_API_PRODUCE, 11);
        if (b->version < 3)
            die("broker %d does not serve Produce v3+", b->node_id);
    }
    p->start_us = p->last_us = now_us();
    if (p->o.seconds > 0)
        p->deadline_us = p->start_us + (int64_t)(p->o.seconds * 1e6);
    if (p->o.rate > 0 || p->o.seconds > 0) {
        int period_ms = p->o.linger_ms > 0 ? p->o.linger_ms : 1;
        struct timeval tv = {period_ms / 1000, (period_ms % 1000) * 1000};
        p->pacer = event_new(p->base, -1, EV_PERSIST, on_pacer, p);
        if (!p->pacer || event_add(p->pacer, &tv))
            die("out of memory");
    }
    pump(p);
    finish_if_done(p);
    event_base_dispatch(p->base);
    double secs = (double)(now_us() - p->start_us) / 1e6;
    double rate = secs > 0 ? (double)p->acked / secs : 0;
    printf("produce: %" PRId64 " msgs, %.1f s, %.0f msgs/s, %.1f MB/s, ", p->acked, secs, rate,
           rate * p->o.record_size / MB);
    if (p->o.acks == 0)
        printf("latency ms p50 n/a p99 n/a p99.9 n/a max n/a (acks=0)\n");
    else
        printf("latency ms p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
               (double)h_quantile(&p->hist, 0.5) / 1000.0,
               (double)h_quantile(&p->hist, 0.99) / 1000.0,
               (double)h_quantile(&p->hist, 0.999) / 1000.0, (double)p->hist.max / 1000.0);
    return 0;
}

/* ---- consume ---- */

static void list_offsets(perf *p, broker *b, int64_t which, bool set_end)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_list_offsets_request_list_offsets_partition *lp = xcalloc((size_t)b->nparts, sizeof *lp);
    for (int i = 0; i < b->nparts; i++) {
        gr_list_offsets_request_list_offsets_partition_init(&lp[i]);
        lp[i].partition_index = p->parts[b->parts[i]].id;
        lp[i].timestamp = which;
    }
    gr_list_offsets_request_list_offsets_topic lt;
    gr_list_offsets_request_list_offsets_topic_init(&lt);
    lt.name = gr_str_from(p->o.topic);
    lt.partitions = lp;
    lt.partitions_count = b->nparts;
    gr_list_offsets_request req;
    gr_list_offsets_request_init(&req);
    req.replica_id = -1;
    req.topics = &lt;
    req.topics_count = 1;
    req.timeout_ms = CALL_TIMEOUT_MS;
    gr_list_offsets_response *resp = NULL;
    int16_t used = 0;
    int err = gr_kclient_call(b->host, b->port, GR_API_LIST_OFFSETS, -1, &req, CALL_TIMEOUT_MS,
                              &a, (void **)&resp, &used);
    if (err)
        die("ListOffsets to broker %d failed: %s", b->node_id, gr_kclient_strerror(err));
    if (used < 1)
        die("broker %d answered ListOffsets at v0", b->node_id);
    for (int i = 0; i < resp->topics_count; i++)
        for (int k = 0; k < resp->topics[i].partitions_count; k++) {
            const gr_list_offsets_response_list_offsets_partition_response *r =
                &resp->topics[i].partitions[k];
            if (r->error_code != GR_NONE)
                die("ListOffsets %s-%d: %s", p->o.topic, r->partition_index, kerr(r->error_code));
            for (int j = 0; j < p->nparts; j++)
                if (p->parts[j].id == r->partition_index) {
                    if (set_end)
                        p->parts[j].end = r->offset;
                    else
                        p->parts[j].offset = r->offset;
                }
        }
    free(lp);
    gr_arena_free(&a);
}

static bool consume_done(perf *p)
{
    if (p->o.messages > 0)
        return p->consumed >= p->o.messages;
    for (int i = 0; i < p->nparts; i++)
        if (p->parts[i].offset < p->parts[i].end)
            return false;
    return true;
}

static void send_fetch(perf *p, broker *b);

static void on_fetched(void *arg, int err, gr_reader *body)
{
    broker *b = arg;
    perf *p = &g_perf;
    if (err)
        die("Fetch from broker %d at %s:%d failed: %s", b->node_id, b->host, b->port,
            gr_kclient_strerror(err));
    gr_arena a;
    gr_arena_init(&a);
    gr_fetch_response resp;
    if (gr_fetch_response_decode(&resp, body, b->version, &a))
        die("Fetch response from broker %d does not decode", b->node_id);
    if (resp.error_code != GR_NONE)
        die("Fetch: %s", kerr(resp.error_code));
    for (int i = 0; i < resp.responses_count; i++)
        for (int k = 0; k < resp.responses[i].partitions_count; k++) {
            const gr_fetch_response_partition_data *pd = &resp.responses[i].partitions[k];
            if (pd->error_code != GR_NONE)
                die("Fetch %s-%d: %s", p->o.topic, pd->partition_index, kerr(pd->error_code));
            partition *part = NULL;
            for (int j = 0; j < p->nparts; j++)
                if (p->parts[j].id == pd->partition_index)
                    part = &p->parts[j];
            if (!part || pd->records.len <= 0)
                continue;
            const uint8_t *q = pd->records.ptr;
            size_t left = (size_t)pd->records.len;
            gr_batch_header h;
            /* A trailing partial batch is normal: it is fetched again. */
            while (gr_batch_parse_header(q, left, &h) == GR_BATCH_OK) {
                size_t sz = gr_batch_size(&h);
                if (gr_batch_last_offset(&h) >= part->offset) {
                    gr_record_iter it;
                    gr_batch_result br = gr_record_iter_init(&it, q, sz, MAX_UNCOMPRESSED);
                    if (br != GR_BATCH_OK)
                        die("Fetch %s-%d: batch at offset %" PRId64 ": %s", p->o.topic,
                            part->id, h.base_offset, gr_batch_result_str(br));
                    gr_record rec;
                    int rc;
                    while ((rc = gr_record_iter_next(&it, &rec, &br)) == 1) {
                        if (h.base_offset + rec.offset_delta < part->offset)
                            continue;
                        if (p->o.messages > 0 && p->consumed >= p->o.messages)
                            break;
                        p->consumed++;
                        if (rec.value.len > 0)
                            p->consumed_bytes += rec.value.len;
                    }
                    gr_record_iter_free(&it);
                    if (rc < 0)
                        die("Fetch %s-%d: record in batch at offset %" PRId64 ": %s",
                            p->o.topic, part->id, h.base_offset, gr_batch_result_str(br));
                    part->offset = gr_batch_last_offset(&h) + 1;
                }
                q += sz;
                left -= sz;
            }
        }
    gr_arena_free(&a);
    p->fetching--;
    if (consume_done(p)) {
        if (!p->fetching)
            event_base_loopbreak(p->base);
        return;
    }
    send_fetch(p, b);
}

static void send_fetch(perf *p, broker *b)
{
    gr_fetch_request_fetch_partition *fp = xcalloc((size_t)b->nparts, sizeof *fp);
    for (int i = 0; i < b->nparts; i++) {
        gr_fetch_request_fetch_partition_init(&fp[i]);
        fp[i].partition = p->parts[b->parts[i]].id;
        fp[i].fetch_offset = p->parts[b->parts[i]].offset;
        fp[i].partition_max_bytes = p->o.fetch_bytes;
    }
    gr_fetch_request_fetch_topic ft;
    gr_fetch_request_fetch_topic_init(&ft);
    ft.topic = gr_str_from(p->o.topic);
    ft.partitions = fp;
    ft.partitions_count = b->nparts;
    gr_fetch_request req;
    gr_fetch_request_init(&req);
    req.replica_id = -1;
    req.max_wait_ms = 500;
    req.min_bytes = 1;
    req.max_bytes = 64 * 1024 * 1024;
    req.session_epoch = -1;
    req.topics = &ft;
    req.topics_count = 1;
    int err = gr_kclient_send(b->client, GR_API_FETCH, b->version, &req, REQUEST_TIMEOUT_MS,
                              on_fetched, b);
    if (err)
        die("Fetch from broker %d: %s", b->node_id, gr_kclient_strerror(err));
    free(fp);
    p->fetching++;
}

static int run_consume(perf *p)
{
    for (int i = 0; i < p->nbrokers; i++) {
        broker *b = &p->brokers[i];
        /* v12 is the last version naming topics by name. */
        b->version = gr_kclient_version(b->client, GR_API_FETCH, 12);
        if (b->version < 4)
            die("broker %d does not serve Fetch v4+", b->node_id);
        list_offsets(p, b, p->o.from_beginning ? -2 : -1, false);
        list_offsets(p, b, -1, true);
    }
    if (!p->o.from_beginning && p->o.messages < 0)
        die("without --from-beginning, give -n: there is nothing to read up to");
    p->start_us = p->last_us = now_us();
    if (!consume_done(p)) {
        for (int i = 0; i < p->nbrokers; i++)
            send_fetch(p, &p->brokers[i]);
        event_base_dispatch(p->base);
    }
    double secs = (double)(now_us() - p->start_us) / 1e6;
    double rate = secs > 0 ? (double)p->consumed / secs : 0;
    double mbs = secs > 0 ? (double)p->consumed_bytes / secs / MB : 0;
    printf("consume: %" PRId64 " msgs, %.1f s, %.0f msgs/s, %.1f MB/s\n", p->consumed, secs,
           rate, mbs);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    perf *p = &g_perf;
    parse_args(&p->o, argc, argv);
    if (p->o.create)
        create_topic(p);
    load_metadata(p);
    p->base = event_base_new();
    if (!p->base)
        die("out of memory");
    connect_all(p);
    struct timeval sec = {1, 0};
    p->tick = event_new(p->base, -1, EV_PERSIST, on_tick, p);
    if (!p->tick || event_add(p->tick, &sec))
        die("out of memory");
    int rc = p->o.produce ? run_produce(p) : run_consume(p);
    fflush(stdout);
    /* Exit without tearing down: every request has completed. */
    return rc;
}
