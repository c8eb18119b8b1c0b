/*
 * test_kclient.c - the protocol client against a real in-process server
 * (netserver with test handlers, on the client's own event loop) and
 * against a hand-written fake server for the misbehaviours a correct
 * server never shows (wrong correlation ids, oversized frames).
 */
#include <arpa/inet.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/api_versions.h"
#include "common/errors.h"
#include "common/kclient.h"
#include "common/logging.h"
#include "common/netserver.h"
#include "tests/unit/suites.h"

/* ---- a real server with test handlers ---- */

static gr_request *g_hung; /* a Metadata request left unanswered */

/*
 * Metadata: echoes the first requested topic name back as the only topic,
 * so a test can tell which request a response answers. Topic "close" makes
 * the server close the connection; topic "hang" is never answered.
 */
static int test_metadata(gr_request *req, gr_writer *out)
{
    gr_metadata_request m;
    if (gr_metadata_request_decode(&m, &req->body, req->api_version, &req->arena) != GR_OK)
        return GR_CLOSE;
    gr_str first = m.topics_count > 0 ? m.topics[0].name : GR_STR_NULL;
    if (gr_str_eq(first, "close"))
        return GR_CLOSE;
    if (gr_str_eq(first, "hang")) {
        g_hung = req;
        return GR_PENDING;
    }
    gr_metadata_response resp;
    gr_metadata_response_init(&resp);
    resp.brokers = gr_arena_calloc(&req->arena, 1, sizeof *resp.brokers);
    if (!resp.brokers)
        return GR_CLOSE;
    gr_metadata_response_broker_init(&resp.brokers[0]);
    resp.brokers_count = 1;
    resp.brokers[0].node_id = 7;
    resp.brokers[0].host = gr_str_from("127.0.0.1");
    resp.brokers[0].port = 9092;
    resp.cluster_id = gr_str_from("test-cluster");
    resp.controller_id = 7;
    if (first.len >= 0) {
        resp.topics = gr_arena_calloc(&req->arena, 1, sizeof *resp.topics);
        if (!resp.topics)
            return GR_CLOSE;
        gr_metadata_response_topic_init(&resp.topics[0]);
        resp.topics[0].name = first;
        resp.topics[0].error_code = GR_UNKNOWN_TOPIC_OR_PARTITION;
        resp.topics_count = 1;
    }
    return gr_metadata_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                               : GR_CLOSE;
}

static const gr_api_handler full_handlers[] = {
    {GR_API_METADATA, 0, 12, test_metadata},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
};
static const gr_api_table full_apis = {full_handlers, 2};

/* An older peer: Metadata up to v5 and ApiVersions up to v2 only. */
static const gr_api_handler old_handlers[] = {
    {GR_API_METADATA, 0, 5, test_metadata},
    {GR_API_API_VERSIONS, 0, 2, gr_handle_api_versions},
};
static const gr_api_table old_apis = {old_handlers, 2};

typedef struct {
    struct event_base *base;
    gr_netserver *srv;
    gr_listener listener;
    gr_netserver_config cfg;
    int port;
    pthread_t thread; /* only for servers on their own thread */
} server;

static void server_start(server *s, struct event_base *base, const gr_api_table *apis)
{
    memset(s, 0, sizeof *s);
    strcpy(s->listener.name, "PLAINTEXT");
    strcpy(s->listener.host, "127.0.0.1");
    s->cfg = (gr_netserver_config){.listeners = &s->listener, .nlisteners = 1,
                                   .max_request_bytes = 1 << 20, .num_threads = 0,
                                   .apis = apis, .subsystem = "test"};
    s->base = base;
    s->srv = gr_netserver_new(base, &s->cfg);
    ck_assert_ptr_nonnull(s->srv);
    ck_assert_int_eq(gr_netserver_start(s->srv), 0);
    s->port = gr_netserver_port(s->srv, 0);
    ck_assert_int_gt(s->port, 0);
}

static void server_stop(server *s)
{
    if (g_hung) {
        gr_request_complete(g_hung, GR_NO_RESPONSE);
        g_hung = NULL;
    }
    gr_netserver_free(s->srv);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs base until *count reaches want or ms pass. */
static void run_until(struct event_base *base, const int *count, int want, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (*count < want && now_ms() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

/* Lets the loop run for ms (to let the other side notice things). */
static void run_for(struct event_base *base, int ms)
{
    int never = 0;
    run_until(base, &never, 1, ms);
}

/* ---- completions recorded by tests ---- */

#define MAX_DONE 256
typedef struct {
    int count;
    int err[MAX_DONE];
    char topic[MAX_DONE][32]; /* first topic of a Metadata response */
    uint64_t at[MAX_DONE];    /* when each completed */
    int16_t version;          /* Metadata version to decode with */
    gr_kclient *free_me;      /* freed from inside the first callback */
} done_log;

typedef struct {
    done_log *log;
    int index;
} done_slot;

static void on_metadata(void *arg, int err, gr_reader *body)
{
    done_slot *slot = arg;
    done_log *log = slot->log;
    log->err[slot->index] = err;
    log->at[slot->index] = now_ms();
    log->topic[slot->index][0] = 0;
    if (err == 0) {
        gr_arena a;
        gr_arena_init(&a);
        gr_metadata_response m;
        int rc = gr_metadata_response_decode(&m, body, log->version, &a);
        if (rc != GR_OK) {
            log->err[slot->index] = 1000;
        } else {
            ck_assert_int_eq(m.brokers_count, 1);
            ck_assert_int_eq(m.brokers[0].node_id, 7);
            if (m.topics_count > 0)
                snprintf(log->topic[slot->index], sizeof log->topic[0], "%.*s",
                         (int)m.topics[0].name.len, m.topics[0].name.ptr);
        }
        gr_arena_free(&a);
    }
    log->count++;
    if (log->free_me) {
        gr_kclient *c = log->free_me;
        log->free_me = NULL;
        gr_kclient_free(c);
    }
}

/* A Metadata request for one topic (t holds it; both are the caller's). */
static void metadata_for(gr_metadata_request *req, gr_metadata_request_topic *t,
                         const char *topic)
{
    gr_metadata_request_init(req);
    gr_metadata_request_topic_init(t);
    t->name = gr_str_from(topic);
    req->topics = t;
    req->topics_count = 1;
    req->allow_auto_topic_creation = false;
}

static int send_metadata(gr_kclient *c, int16_t version, const char *topic, int timeout_ms,
                         done_slot *slot)
{
    gr_metadata_request req;
    gr_metadata_request_topic t;
    metadata_for(&req, &t, topic);
    return gr_kclient_send(c, GR_API_METADATA, version, &req, timeout_ms, on_metadata, slot);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    gr_logging_set_level(GR_LOGGING_ERROR);
    g_hung = NULL;
}

/* ---- tests ---- */

static void on_api_versions_resp(void *arg, int err, gr_reader *body)
{
    done_log *log = arg;
    log->err[log->count] = err;
    if (err == 0) {
        gr_arena a;
        gr_arena_init(&a);
        gr_api_versions_response m;
        int rc = gr_api_versions_response_decode(&m, body, 3, &a);
        if (rc != GR_OK || m.error_code != 0 || m.api_keys_count != 2)
            log->err[log->count] = 1000;
        gr_arena_free(&a);
    }
    log->count++;
}

START_TEST(api_versions_and_metadata_round_trip)
{
    struct event_base *base = event_base_new();
    server s;
    server_start(&s, base, &full_apis);
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", s.port, "test-client");
    ck_assert_ptr_nonnull(c);
    ck_assert(!gr_kclient_connected(c));
    ck_assert_int_eq(gr_kclient_version(c, GR_API_METADATA, 12), -1);

    done_log avlog = {0};
    gr_api_versions_request avreq;
    gr_api_versions_request_init(&avreq);
    avreq.client_software_name = gr_str_from("test");
    avreq.client_software_version = gr_str_from("1");
    ck_assert_int_eq(gr_kclient_send(c, GR_API_API_VERSIONS, 3, &avreq, 5000,
                                     on_api_versions_resp, &avlog),
                     0);
    ck_assert_int_eq(avlog.count, 0); /* never from inside send */
    run_until(base, &avlog.count, 1, 5000);
    ck_assert_int_eq(avlog.count, 1);
    ck_assert_int_eq(avlog.err[0], 0);
    ck_assert(gr_kclient_connected(c));

    done_log log = {.version = 12};
    done_slot slot = {&log, 0};
    ck_assert_int_eq(send_metadata(c, 12, "orders", 5000, &slot), 0);
    run_until(base, &log.count, 1, 5000);
    ck_assert_int_eq(log.count, 1);
    ck_assert_int_eq(log.err[0], 0);
    ck_assert_str_eq(log.topic[0], "orders");

    /* A non-flexible version works on the same connection. */
    log = (done_log){.version = 4};
    ck_assert_int_eq(send_metadata(c, 4, "v4", 5000, &slot), 0);
    run_until(base, &log.count, 1, 5000);
    ck_assert_int_eq(log.err[0], 0);
    ck_assert_str_eq(log.topic[0], "v4");

    gr_kclient_free(c);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

START_TEST(pipelined_requests_complete_in_order)
{
    struct event_base *base = event_base_new();
    server s;
    server_start(&s, base, &full_apis);
    gr_kclient *c = gr_kclient_new(base, "localhost", s.port, "test-client");
    ck_assert_ptr_nonnull(c);
    done_log log = {.version = 9};
    static done_slot slots[100];
    char name[32];
    /* Queued before the connection exists, then written together. */
    for (int i = 0; i < 100; i++) {
        slots[i] = (done_slot){&log, i};
        snprintf(name, sizeof name, "topic-%d", i);
        ck_assert_int_eq(send_metadata(c, 9, name, 10000, &slots[i]), 0);
    }
    run_until(base, &log.count, 100, 10000);
    ck_assert_int_eq(log.count, 100);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "topic-%d", i);
        ck_assert_int_eq(log.err[i], 0);
        ck_assert_str_eq(log.topic[i], name);
    }
    /* Once connected, requests are written at once and still pipelined. */
    log.count = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "again-%d", i);
        ck_assert_int_eq(send_metadata(c, 9, name, 10000, &slots[i]), 0);
    }
    run_until(base, &log.count, 100, 10000);
    ck_assert_int_eq(log.count, 100);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "again-%d", i);
        ck_assert_int_eq(log.err[i], 0);
        ck_assert_str_eq(log.topic[i], name);
    }
    gr_kclient_free(c);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

static void on_connected(void *arg, int err, gr_reader *body)
{
    done_log *log = arg;
    ck_assert_ptr_null(body);
    log->err[log->count++] = err;
}

START_TEST(versions_are_negotiated_with_an_older_peer)
{
    struct event_base *base = event_base_new();
    server s;
    server_start(&s, base, &old_apis);
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", s.port, NULL);
    ck_assert_ptr_nonnull(c);
    done_log log = {0};
    ck_assert_int_eq(gr_kclient_connect(c, 5000, on_connected, &log), 0);
    run_until(base, &log.count, 1, 5000);
    ck_assert_int_eq(log.count, 1);
    /* Our ApiVersions v4 was refused; the client asked again with v2. */
    ck_assert_int_eq(log.err[0], 0);
    ck_assert(gr_kclient_connected(c));
    ck_assert_int_eq(gr_kclient_version(c, GR_API_METADATA, 12), 5);
    ck_assert_int_eq(gr_kclient_version(c, GR_API_METADATA, 3), 3);
    ck_assert_int_eq(gr_kclient_version(c, GR_API_API_VERSIONS, 99), 2);
    ck_assert_int_eq(gr_kclient_version(c, GR_API_PRODUCE, 11), -1);
    ck_assert_int_eq(gr_kclient_version(c, GR_API_METADATA, -1), -1);

    /* A version the peer lacks fails without being written (the peer would
     * close the connection), and the connection stays usable. */
    done_log mlog = {.version = 5};
    done_slot slots[2] = {{&mlog, 0}, {&mlog, 1}};
    ck_assert_int_eq(send_metadata(c, 9, "too-new", 5000, &slots[0]), 0);
    ck_assert_int_eq(mlog.count, 0);
    ck_assert_int_eq(send_metadata(c, 5, "ok", 5000, &slots[1]), 0);
    run_until(base, &mlog.count, 2, 5000);
    ck_assert_int_eq(mlog.count, 2);
    ck_assert_int_eq(mlog.err[0], GR_KCLIENT_ERR_UNSUPPORTED);
    ck_assert_int_eq(mlog.err[1], 0);
    ck_assert_str_eq(mlog.topic[1], "ok");
    ck_assert(gr_kclient_connected(c));

    /* Our codec's own limits are checked at once. */
    ck_assert_int_eq(send_metadata(c, 99, "x", 5000, &slots[0]), GR_ERR_VERSION);
    gr_kclient_free(c);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

START_TEST(server_closing_fails_in_flight_and_next_send_reconnects)
{
    struct event_base *base = event_base_new();
    server s;
    server_start(&s, base, &full_apis);
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", s.port, "test-client");
    done_log log = {.version = 12};
    done_slot slots[4] = {{&log, 0}, {&log, 1}, {&log, 2}, {&log, 3}};
    ck_assert_int_eq(send_metadata(c, 12, "before", 5000, &slots[0]), 0);
    run_until(base, &log.count, 1, 5000);
    /* The server drops what it has not sent when it closes, so "close" and
     * "after" go together, after "before" has been answered. */
    ck_assert_int_eq(send_metadata(c, 12, "close", 5000, &slots[1]), 0);
    ck_assert_int_eq(send_metadata(c, 12, "after", 5000, &slots[2]), 0);
    run_until(base, &log.count, 3, 5000);
    ck_assert_int_eq(log.count, 3);
    ck_assert_int_eq(log.err[0], 0);
    ck_assert_str_eq(log.topic[0], "before");
    ck_assert_int_eq(log.err[1], GR_KCLIENT_ERR_DISCONNECTED);
    ck_assert_int_eq(log.err[2], GR_KCLIENT_ERR_DISCONNECTED);
    ck_assert(!gr_kclient_connected(c));

    /* The next send reconnects (after the backoff) and succeeds. */
    ck_assert_int_eq(send_metadata(c, 12, "reconnected", 5000, &slots[3]), 0);
    run_until(base, &log.count, 4, 5000);
    ck_assert_int_eq(log.count, 4);
    ck_assert_int_eq(log.err[3], 0);
    ck_assert_str_eq(log.topic[3], "reconnected");
    ck_assert(gr_kclient_connected(c));
    /* No sooner than reconnect.backoff.ms (50) after the connection went. */
    ck_assert_uint_ge(log.at[3] - log.at[1], 45);
    gr_kclient_free(c);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

START_TEST(unanswered_request_times_out)
{
    struct event_base *base = event_base_new();
    server s;
    server_start(&s, base, &full_apis);
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", s.port, "test-client");
    done_log log = {.version = 12};
    done_slot slots[3] = {{&log, 0}, {&log, 1}, {&log, 2}};
    uint64_t t0 = now_ms();
    ck_assert_int_eq(send_metadata(c, 12, "hang", 300, &slots[0]), 0);
    ck_assert_int_eq(send_metadata(c, 12, "behind", 5000, &slots[1]), 0);
    run_until(base, &log.count, 2, 5000);
    uint64_t took = now_ms() - t0;
    ck_assert_int_eq(log.count, 2);
    ck_assert_int_eq(log.err[0], GR_KCLIENT_ERR_TIMEOUT);
    /* The request pipelined behind it cannot be answered on that connection. */
    ck_assert_int_eq(log.err[1], GR_KCLIENT_ERR_DISCONNECTED);
    ck_assert_uint_ge(took, 280);
    ck_assert_uint_lt(took, 2000);
    ck_assert_ptr_nonnull(g_hung);
    /* And the client recovers. */
    ck_assert_int_eq(send_metadata(c, 12, "fine", 5000, &slots[2]), 0);
    run_until(base, &log.count, 3, 5000);
    ck_assert_int_eq(log.err[2], 0);
    gr_kclient_free(c);
    run_for(base, 20);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

/* A port nothing listens on: bound (so no other test can take it) but not
 * listening, so connections to it are refused. Returns the socket. */
static int closed_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

START_TEST(connect_to_closed_port_fails_promptly)
{
    int port;
    int holder = closed_port(&port);
    struct event_base *base = event_base_new();
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", port, "test-client");
    done_log log = {.version = 12};
    done_slot slots[3] = {{&log, 0}, {&log, 1}, {&log, 2}};
    uint64_t t0 = now_ms();
    ck_assert_int_eq(send_metadata(c, 12, "a", 5000, &slots[0]), 0);
    ck_assert_int_eq(send_metadata(c, 12, "b", 5000, &slots[1]), 0);
    run_until(base, &log.count, 2, 5000);
    ck_assert_int_eq(log.count, 2);
    ck_assert_int_eq(log.err[0], GR_KCLIENT_ERR_CONNECT);
    ck_assert_int_eq(log.err[1], GR_KCLIENT_ERR_CONNECT);
    ck_assert_uint_lt(now_ms() - t0, 1000);
    /* A second attempt waits out the backoff, then fails the same way. */
    ck_assert_int_eq(send_metadata(c, 12, "c", 5000, &slots[2]), 0);
    run_until(base, &log.count, 3, 5000);
    ck_assert_int_eq(log.err[2], GR_KCLIENT_ERR_CONNECT);
    ck_assert_uint_ge(log.at[2] - log.at[1], 45);
    ck_assert_uint_lt(log.at[2] - log.at[1], 1000);
    gr_kclient_free(c);
    event_base_free(base);

    gr_arena a;
    gr_arena_init(&a);
    void *out = NULL;
    gr_api_versions_request req;
    gr_api_versions_request_init(&req);
    ck_assert_int_eq(gr_kclient_call("127.0.0.1", port, GR_API_API_VERSIONS, -1, &req,
                                     2000, &a, &out, NULL),
                     GR_KCLIENT_ERR_CONNECT);
    ck_assert_int_eq(gr_kclient_call("no-such-host.invalid", 9092, GR_API_API_VERSIONS, 0, &req,
                                     2000, &a, &out, NULL),
                     GR_KCLIENT_ERR_CONNECT);
    gr_arena_free(&a);
    close(holder);
}
END_TEST

START_TEST(free_fails_outstanding_requests_before_returning)
{
    struct event_base *base = event_base_new();
    server s;
    server_start(&s, base, &full_apis);
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", s.port, "test-client");
    done_log log = {.version = 12};
    done_slot slots[4] = {{&log, 0}, {&log, 1}, {&log, 2}, {&log, 3}};
    ck_assert_int_eq(send_metadata(c, 12, "queued", 5000, &slots[0]), 0);
    gr_kclient_free(c); /* before any connection */
    ck_assert_int_eq(log.count, 1);
    ck_assert_int_eq(log.err[0], GR_KCLIENT_ERR_CLOSED);

    /* Freed from inside a callback, with another request in flight. */
    log = (done_log){.version = 12};
    c = gr_kclient_new(base, "127.0.0.1", s.port, "test-client");
    log.free_me = c;
    ck_assert_int_eq(send_metadata(c, 12, "first", 5000, &slots[0]), 0);
    ck_assert_int_eq(send_metadata(c, 12, "hang", 5000, &slots[1]), 0);
    run_until(base, &log.count, 2, 5000);
    ck_assert_int_eq(log.count, 2);
    ck_assert_int_eq(log.err[0], 0);
    ck_assert_int_eq(log.err[1], GR_KCLIENT_ERR_CLOSED);
    run_for(base, 20);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

/* ---- a fake server that misbehaves ---- */

enum { FAKE_WRONG_CORRELATION, FAKE_HUGE_FRAME };
typedef struct {
    int mode;
    int port;
    struct evconnlistener *l;
    struct bufferevent *bev;
} fake;

static void fake_reply(struct bufferevent *bev, int32_t corr, const gr_writer *body)
{
    uint8_t hdr[8];
    int32_t size = (int32_t)(4 + body->len);
    for (int i = 0; i < 4; i++) {
        hdr[i] = (uint8_t)((uint32_t)size >> (24 - 8 * i));
        hdr[4 + i] = (uint8_t)((uint32_t)corr >> (24 - 8 * i));
    }
    bufferevent_write(bev, hdr, 8);
    bufferevent_write(bev, body->p, body->len);
}

static void fake_read(struct bufferevent *bev, void *arg)
{
    fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) >= 4) {
        uint8_t *p = evbuffer_pullup(in, 4);
        size_t size = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (evbuffer_get_length(in) < 4 + size)
            return;
        p = evbuffer_pullup(in, (ssize_t)(4 + size));
        int16_t key = (int16_t)(p[4] << 8 | p[5]);
        int16_t version = (int16_t)(p[6] << 8 | p[7]);
        int32_t corr = (int32_t)((uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | p[10] << 8 | p[11]);
        evbuffer_drain(in, 4 + size);
        gr_writer w;
        gr_writer_init(&w, 64);
        if (key == GR_API_API_VERSIONS) {
            gr_api_versions_response r;
            gr_api_versions_response_init(&r);
            gr_api_versions_response_api_version v[2] = {{GR_API_API_VERSIONS, 0, 4},
                                                         {GR_API_METADATA, 0, 12}};
            r.api_keys = v;
            r.api_keys_count = 2;
            ck_assert_int_eq(gr_api_versions_response_encode(&r, version, &w), GR_OK);
            fake_reply(bev, corr, &w);
        } else if (f->mode == FAKE_WRONG_CORRELATION) {
            gr_write_i8(&w, 0);
            fake_reply(bev, corr + 1, &w);
        } else {
            uint8_t huge[4] = {0x7f, 0, 0, 0}; /* 2 GiB announced, never sent */
            bufferevent_write(bev, huge, 4);
        }
        gr_writer_free(&w);
    }
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    fake *f = arg;
    bufferevent_free(bev);
    if (f->bev == bev)
        f->bev = NULL;
}

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    (void)sa;
    (void)salen;
    fake *f = arg;
    if (f->bev)
        bufferevent_free(f->bev);
    f->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->bev, fake_read, NULL, fake_event, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
}

static void fake_start(fake *f, struct event_base *base, int mode)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->l = evconnlistener_new_bind(base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                   16, (struct sockaddr *)&a, sizeof a);
    ck_assert_ptr_nonnull(f->l);
    socklen_t len = sizeof a;
    getsockname(evconnlistener_get_fd(f->l), (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
}

static void fake_stop(fake *f)
{
    if (f->bev)
        bufferevent_free(f->bev);
    evconnlistener_free(f->l);
}

static void check_protocol_error(int mode)
{
    struct event_base *base = event_base_new();
    fake f;
    fake_start(&f, base, mode);
    gr_kclient *c = gr_kclient_new(base, "127.0.0.1", f.port, "test-client");
    done_log log = {.version = 12};
    done_slot slots[2] = {{&log, 0}, {&log, 1}};
    ck_assert_int_eq(send_metadata(c, 12, "a", 5000, &slots[0]), 0);
    ck_assert_int_eq(send_metadata(c, 12, "b", 5000, &slots[1]), 0);
    run_until(base, &log.count, 2, 5000);
    ck_assert_int_eq(log.count, 2);
    ck_assert_int_eq(log.err[0], GR_KCLIENT_ERR_PROTOCOL);
    ck_assert_int_eq(log.err[1], GR_KCLIENT_ERR_PROTOCOL);
    ck_assert(!gr_kclient_connected(c));
    /* The client closed the connection: the fake server sees EOF. */
    run_for(base, 50);
    ck_assert_ptr_null(f.bev);
    gr_kclient_free(c);
    fake_stop(&f);
    event_base_free(base);
}

START_TEST(wrong_correlation_id_is_a_protocol_error)
{
    check_protocol_error(FAKE_WRONG_CORRELATION);
}
END_TEST

START_TEST(oversized_response_is_refused_before_buffering)
{
    check_protocol_error(FAKE_HUGE_FRAME);
}
END_TEST

/* ---- the blocking call, against a server on its own thread ---- */

static void *serve(void *arg)
{
    server *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

START_TEST(blocking_call_round_trips)
{
    ck_assert_int_eq(evthread_use_pthreads(), 0);
    server s;
    struct event_base *base = event_base_new();
    server_start(&s, base, &full_apis);
    ck_assert_int_eq(pthread_create(&s.thread, NULL, serve, &s), 0);

    gr_arena a;
    gr_arena_init(&a);
    void *out = NULL;
    int16_t used = -1;
    gr_api_versions_request avreq;
    gr_api_versions_request_init(&avreq);
    avreq.client_software_name = gr_str_from("test");
    avreq.client_software_version = gr_str_from("1.0");
    ck_assert_int_eq(gr_kclient_call("127.0.0.1", s.port, GR_API_API_VERSIONS, -1, &avreq, 5000,
                                     &a, &out, &used),
                     0);
    ck_assert_int_eq(used, 4);
    const gr_api_versions_response *av = out;
    ck_assert_int_eq(av->error_code, 0);
    ck_assert_int_eq(av->api_keys_count, 2);

    gr_metadata_request req;
    gr_metadata_request_topic t;
    metadata_for(&req, &t, "blocking");
    ck_assert_int_eq(gr_kclient_call("127.0.0.1", s.port, GR_API_METADATA, -1, &req, 5000, &a,
                                     &out, &used),
                     0);
    ck_assert_int_eq(used, 12);
    const gr_metadata_response *md = out;
    ck_assert_int_eq(md->controller_id, 7);
    ck_assert(gr_str_eq(md->cluster_id, "test-cluster"));
    ck_assert_int_eq(md->topics_count, 1);
    ck_assert(gr_str_eq(md->topics[0].name, "blocking"));

    ck_assert_int_eq(gr_kclient_call("127.0.0.1", s.port, GR_API_METADATA, 1, &req, 5000, &a,
                                     &out, &used),
                     0);
    ck_assert_int_eq(used, 1);
    md = out;
    ck_assert_int_eq(md->controller_id, 7);
    ck_assert_int_eq(md->brokers_count, 1);

    /* An API the server does not serve. */
    gr_list_groups_request lg;
    gr_list_groups_request_init(&lg);
    ck_assert_int_eq(gr_kclient_call("127.0.0.1", s.port, GR_API_LIST_GROUPS, -1, &lg, 5000, &a,
                                     &out, &used),
                     GR_KCLIENT_ERR_UNSUPPORTED);
    gr_arena_free(&a);

    event_base_loopbreak(base);
    pthread_join(s.thread, NULL);
    server_stop(&s);
    event_base_free(base);
}
END_TEST

/* The frame gr_kclient_encode_frame builds decodes back to what went in,
 * with a header of the version the api key and version call for. */
START_TEST(encoded_frame_decodes_back)
{
    gr_metadata_request req;
    gr_metadata_request_topic t;
    metadata_for(&req, &t, "framed");
    static const int16_t versions[] = {1, 9, 12}; /* header v1, then v2 (flexible) */
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        uint8_t *frame = NULL;
        size_t len = 0;
        ck_assert_int_eq(gr_kclient_encode_frame(GR_API_METADATA, versions[i], 4242, "cid", &req,
                                                 &frame, &len),
                         GR_OK);
        ck_assert_uint_gt(len, 4);
        ck_assert_uint_eq(((uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 |
                           (uint32_t)frame[2] << 8 | frame[3]),
                          len - 4);
        gr_arena a;
        gr_arena_init(&a);
        gr_reader r;
        gr_reader_init(&r, frame + 4, len - 4);
        gr_request_header h;
        ck_assert_int_eq(gr_request_header_decode(
                             &h, &r, gr_request_header_version(GR_API_METADATA, versions[i]), &a),
                         GR_OK);
        ck_assert_int_eq(h.request_api_key, GR_API_METADATA);
        ck_assert_int_eq(h.request_api_version, versions[i]);
        ck_assert_int_eq(h.correlation_id, 4242);
        ck_assert(gr_str_eq(h.client_id, "cid"));
        gr_metadata_request back;
        ck_assert_int_eq(gr_metadata_request_decode(&back, &r, versions[i], &a), GR_OK);
        ck_assert_uint_eq(gr_reader_remaining(&r), 0);
        ck_assert_int_eq(back.topics_count, 1);
        ck_assert(gr_str_eq(back.topics[0].name, "framed"));
        gr_arena_free(&a);
        free(frame);
    }
    /* A message the version cannot carry is refused, nothing handed out. */
    gr_metadata_request_topic nameless;
    gr_metadata_request_topic_init(&nameless);
    nameless.name = GR_STR_NULL;
    req.topics = &nameless;
    uint8_t *frame = NULL;
    size_t len = 0;
    ck_assert_int_eq(gr_kclient_encode_frame(GR_API_METADATA, 1, 1, NULL, &req, &frame, &len),
                     GR_ERR_MALFORMED);
    ck_assert_ptr_null(frame);
}
END_TEST

Suite *kclient_suite(void)
{
    Suite *s = suite_create("kclient");
    TCase *tc = tcase_create("kclient");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, api_versions_and_metadata_round_trip);
    tcase_add_test(tc, pipelined_requests_complete_in_order);
    tcase_add_test(tc, versions_are_negotiated_with_an_older_peer);
    tcase_add_test(tc, server_closing_fails_in_flight_and_next_send_reconnects);
    tcase_add_test(tc, unanswered_request_times_out);
    tcase_add_test(tc, connect_to_closed_port_fails_promptly);
    tcase_add_test(tc, free_fails_outstanding_requests_before_returning);
    tcase_add_test(tc, wrong_correlation_id_is_a_protocol_error);
    tcase_add_test(tc, oversized_response_is_refused_before_buffering);
    tcase_add_test(tc, blocking_call_round_trips);
    tcase_add_test(tc, encoded_frame_decodes_back);
    suite_add_tcase(s, tc);
    return s;
}
