/* kclient.c - see kclient.h for the connection model and error rules. */
#include "common/kclient.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/logging.h"
#include "common/version.h"
#include "proto/messages.h"

#define SUB "kclient"
/* API keys we keep negotiated versions for; Kafka's keys are all below. */
#define MAX_KEYS 128

typedef struct kreq kreq;
struct kreq {
    kreq *next;
    gr_kclient *c;
    int32_t corr;
    int16_t key, version;
    uint8_t *frame; /* the whole frame until written; NULL for a connect marker */
    size_t frame_len;
    struct event *timer; /* NULL: no timeout */
    gr_kclient_cb cb;
    void *arg;
    bool handshake; /* our own ApiVersions request */
};

typedef struct {
    kreq *head, *tail;
} kqueue;

enum state {
    ST_IDLE,        /* no connection, none scheduled */
    ST_SCHEDULED,   /* connect_ev armed (backoff or next loop turn) */
    ST_CONNECTING,  /* TCP connect in progress */
    ST_NEGOTIATING, /* ApiVersions in flight */
    ST_READY,
};

struct gr_kclient {
    struct event_base *base;
    char *host;
    int port;
    char *client_id;
    char endpoint[300];

    enum state state;
    struct bufferevent *bev;
    struct addrinfo *addrs, *addr_cur;
    struct event *connect_ev; /* deferred (re)connect */
    struct event *setup_ev;   /* bounds connect + negotiation */
    kqueue pending;           /* not written yet */
    kqueue inflight;          /* written, awaiting responses, in order */
    uint32_t next_corr; /* wraps; correlation ids stay non-negative */
    uint64_t gen; /* bumped whenever the connection is torn down */

    int16_t av_version; /* ApiVersions version we ask with */
    bool negotiated;
    int16_t vmin[MAX_KEYS], vmax[MAX_KEYS]; /* the peer's; vmax -1: unsupported */

    int backoff_ms;
    uint64_t next_connect_ms; /* monotonic; no connect before this */

    int busy;      /* callbacks running */
    bool freeing;  /* gr_kclient_free called */
};

static void teardown(gr_kclient *c, int err, const char *why);
static void flush(gr_kclient *c);

const char *gr_kclient_strerror(int err)
{
    switch (err) {
    case GR_KCLIENT_ERR_CONNECT: return "cannot connect";
    case GR_KCLIENT_ERR_DISCONNECTED: return "disconnected";
    case GR_KCLIENT_ERR_TIMEOUT: return "timed out";
    case GR_KCLIENT_ERR_PROTOCOL: return "protocol error";
    case GR_KCLIENT_ERR_CLOSED: return "client closed";
    case GR_KCLIENT_ERR_UNSUPPORTED: return "version not supported by the peer";
    default: return gr_err_str(err);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(uint64_t ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- queues ---- */

static void q_push(kqueue *q, kreq *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
}

static kreq *q_pop(kqueue *q)
{
    kreq *r = q->head;
    if (r) {
        q->head = r->next;
        if (!q->head)
            q->tail = NULL;
        r->next = NULL;
    }
    return r;
}

/* Unlinks r from q; false if it is not there. */
static bool q_remove(kqueue *q, kreq *r)
{
    kreq *prev = NULL;
    for (kreq *x = q->head; x; prev = x, x = x->next) {
        if (x != r)
            continue;
        if (prev)
            prev->next = x->next;
        else
            q->head = x->next;
        if (q->tail == x)
            q->tail = prev;
        x->next = NULL;
        return true;
    }
    return false;
}

static void req_free(kreq *r)
{
    if (r->timer)
        event_free(r->timer);
    free(r->frame);
    free(r);
}

/* ---- lifetime ---- */

static void destroy(gr_kclient *c)
{
    if (c->connect_ev)
        event_free(c->connect_ev);
    if (c->setup_ev)
        event_free(c->setup_ev);
    free(c->host);
    free(c->client_id);
    free(c);
}

/* After running callbacks: frees c if a callback asked for it and no
 * callback is still running. True if c is gone. */
static bool settle(gr_kclient *c)
{
    if (c->freeing && c->busy == 0) {
        destroy(c);
        return true;
    }
    return false;
}

/* Completes r (already unlinked) and frees it. */
static void complete(gr_kclient *c, kreq *r, int err, gr_reader *body)
{
    if (r->timer)
        event_del(r->timer);
    c->busy++;
    r->cb(r->arg, err, body);
    c->busy--;
    req_free(r);
}

/* ---- timeouts ---- */

static void req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kreq *r = arg;
    gr_kclient *c = r->c;
    if (q_remove(&c->pending, r)) {
        complete(c, r, GR_KCLIENT_ERR_TIMEOUT, NULL);
        settle(c);
        return;
    }
    if (!q_remove(&c->inflight, r))
        return;
    /* Written but unanswered: its response slot cannot be skipped, so the
     * connection goes, as in Kafka's clients. */
    GR_WARN(SUB, "%s: %s request (correlation id %d) timed out; closing the connection",
            c->endpoint, gr_api_lookup(r->key) ? gr_api_lookup(r->key)->name : "?", r->corr);
    complete(c, r, GR_KCLIENT_ERR_TIMEOUT, NULL);
    if (c->freeing) {
        settle(c);
        return;
    }
    teardown(c, GR_KCLIENT_ERR_DISCONNECTED, NULL);
    settle(c);
}

static void setup_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_kclient *c = arg;
    GR_WARN(SUB, "%s: connection setup did not finish within %d ms", c->endpoint,
            GR_KCLIENT_SETUP_TIMEOUT_MS);
    teardown(c, GR_KCLIENT_ERR_CONNECT, NULL);
    settle(c);
}

/* ---- connection ---- */

/* Closes the connection (if any) and fails every request with err (queued
 * ones that never reached a connection too). why, if set, is logged. */
static void teardown(gr_kclient *c, int err, const char *why)
{
    if (why)
        GR_WARN(SUB, "%s: closing connection: %s", c->endpoint, why);
    bool had_conn = c->state != ST_IDLE && c->state != ST_SCHEDULED;
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->addrs) {
        freeaddrinfo(c->addrs);
        c->addrs = c->addr_cur = NULL;
    }
    event_del(c->setup_ev);
    event_del(c->connect_ev);
    if (had_conn) {
        c->next_connect_ms = now_ms() + (uint64_t)c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > GR_KCLIENT_BACKOFF_MAX_MS ? GR_KCLIENT_BACKOFF_MAX_MS
                                                                      : c->backoff_ms * 2;
    }
    c->state = ST_IDLE;
    c->negotiated = false;
    c->gen++;

    /* Detach first: callbacks may queue new requests (which start a new
     * connection) or free the client. */
    kqueue inflight = c->inflight, pending = c->pending;
    c->inflight = (kqueue){0};
    c->pending = (kqueue){0};
    kreq *r;
    while ((r = q_pop(&inflight)))
        complete(c, r, r->handshake ? GR_KCLIENT_ERR_CONNECT : err, NULL);
    while ((r = q_pop(&pending)))
        complete(c, r, err == GR_KCLIENT_ERR_DISCONNECTED && !had_conn ? GR_KCLIENT_ERR_CONNECT : err,
                 NULL);
}

static void free_frame(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Writes r's frame and moves it in flight. */
static int write_req(gr_kclient *c, kreq *r)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_add_reference(out, r->frame, r->frame_len, free_frame, NULL) != 0)
        return -1;
    r->frame = NULL;
    q_push(&c->inflight, r);
    return 0;
}

int gr_kclient_encode_frame(int16_t key, int16_t version, int32_t corr, const char *client_id,
                            const void *msg, uint8_t **frame, size_t *len)
{
    gr_writer w;
    gr_writer_init(&w, 128);
    gr_write_i32(&w, 0);
    gr_request_header h;
    gr_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = version;
    h.correlation_id = corr;
    h.client_id = gr_str_from(client_id);
    int rc = gr_request_header_encode(&h, gr_request_header_version(key, version), &w);
    if (rc == GR_OK)
        rc = gr_request_encode(key, version, msg, &w);
    if (rc == GR_OK && !gr_writer_ok(&w))
        rc = GR_ERR_NOMEM;
    if (rc == GR_OK && w.len - 4 > INT32_MAX)
        rc = GR_ERR_MALFORMED;
    if (rc != GR_OK) {
        gr_writer_free(&w);
        return rc;
    }
    gr_write_i32_at(&w, 0, (int32_t)(w.len - 4));
    *frame = gr_writer_take(&w, len);
    return GR_OK;
}

static void on_api_versions(void *arg, int err, gr_reader *body);

/* Sends our ApiVersions request at c->av_version, ahead of everything. */
static int send_handshake(gr_kclient *c)
{
    kreq *r = calloc(1, sizeof *r);
    if (!r)
        return GR_ERR_NOMEM;
    r->c = c;
    r->key = GR_API_API_VERSIONS;
    r->version = c->av_version;
    r->corr = (int32_t)(c->next_corr++ & INT32_MAX);
    r->cb = on_api_versions;
    r->arg = c;
    r->handshake = true;
    gr_api_versions_request req;
    gr_api_versions_request_init(&req);
    req.client_software_name = gr_str_from("gregor");
    req.client_software_version = gr_str_from(GR_VERSION);
    int rc = gr_kclient_encode_frame(r->key, r->version, r->corr, c->client_id, &req, &r->frame, &r->frame_len);
    if (rc == GR_OK && write_req(c, r) != 0)
        rc = GR_ERR_NOMEM;
    if (rc != GR_OK)
        req_free(r);
    return rc;
}

static void on_api_versions(void *arg, int err, gr_reader *body)
{
    gr_kclient *c = arg;
    if (err)
        return; /* the connection is being torn down; it fails the rest */

    /* An UNSUPPORTED_VERSION answer is a v0 body listing the versions the
     * peer does support; the error code leads every version's body. */
    gr_reader peek = *body;
    int16_t code = 0;
    gr_read_i16(&peek, &code);
    gr_arena a;
    gr_arena_init(&a);
    char why[160];
    if (code == GR_UNSUPPORTED_VERSION) {
        void *out = NULL;
        gr_reader r0 = *body;
        int16_t theirs = -1;
        if (gr_response_decode(GR_API_API_VERSIONS, 0, &r0, &a, &out) == GR_OK) {
            const gr_api_versions_response *resp = out;
            for (int32_t i = 0; i < resp->api_keys_count; i++)
                if (resp->api_keys[i].api_key == GR_API_API_VERSIONS)
                    theirs = resp->api_keys[i].max_version;
        }
        gr_arena_free(&a);
        if (theirs >= 0 && theirs < c->av_version) {
            GR_INFO(SUB, "%s: peer supports ApiVersions up to v%d; asking again", c->endpoint,
                    theirs);
            c->av_version = theirs;
            if (send_handshake(c) != GR_OK)
                teardown(c, GR_KCLIENT_ERR_CONNECT, "cannot queue ApiVersions request");
            return;
        }
        teardown(c, GR_KCLIENT_ERR_CONNECT, "peer refused every ApiVersions version we know");
        return;
    }

    void *out = NULL;
    int rc = gr_response_decode(GR_API_API_VERSIONS, c->av_version, body, &a, &out);
    if (rc != GR_OK) {
        gr_arena_free(&a);
        snprintf(why, sizeof why, "malformed ApiVersions v%d response (%s)", c->av_version,
                 gr_err_str(rc));
        teardown(c, GR_KCLIENT_ERR_CONNECT, why);
        return;
    }
    const gr_api_versions_response *resp = out;
    if (resp->error_code != GR_NONE) {
        snprintf(why, sizeof why, "ApiVersions failed: %s",
                 gr_kafka_error_name(resp->error_code));
        gr_arena_free(&a);
        teardown(c, GR_KCLIENT_ERR_CONNECT, why);
        return;
    }
    for (int i = 0; i < MAX_KEYS; i++)
        c->vmin[i] = c->vmax[i] = -1;
    for (int32_t i = 0; i < resp->api_keys_count; i++) {
        const gr_api_versions_response_api_version *v = &resp->api_keys[i];
        if (v->api_key >= 0 && v->api_key < MAX_KEYS && v->min_version <= v->max_version &&
            v->min_version >= 0) {
            c->vmin[v->api_key] = v->min_version;
            c->vmax[v->api_key] = v->max_version;
        }
    }
    gr_arena_free(&a);
    event_del(c->setup_ev);
    c->negotiated = true;
    c->state = ST_READY;
    c->backoff_ms = GR_KCLIENT_BACKOFF_MS;
    c->next_connect_ms = 0;
    GR_DEBUG(SUB, "%s: connected (ApiVersions v%d)", c->endpoint, c->av_version);
    flush(c);
}

static bool peer_supports(const gr_kclient *c, int16_t key, int16_t version)
{
    return key >= 0 && key < MAX_KEYS && c->vmax[key] >= 0 && version >= c->vmin[key] &&
           version <= c->vmax[key];
}

/* Writes queued requests (READY only). Runs callbacks (connect markers,
 * unsupported versions); stops if one frees c or the connection drops. */
static void flush(gr_kclient *c)
{
    uint64_t gen = c->gen;
    while (c->state == ST_READY && c->gen == gen && !c->freeing && c->pending.head) {
        kreq *r = q_pop(&c->pending);
        if (!r->frame) {
            complete(c, r, 0, NULL);
        } else if (!peer_supports(c, r->key, r->version)) {
            GR_DEBUG(SUB, "%s: peer does not support %s v%d", c->endpoint,
                     gr_api_lookup(r->key) ? gr_api_lookup(r->key)->name : "?", r->version);
            complete(c, r, GR_KCLIENT_ERR_UNSUPPORTED, NULL);
        } else if (write_req(c, r) != 0) {
            complete(c, r, GR_ERR_NOMEM, NULL);
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    gr_kclient *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char why[200];
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < 4)
            return;
        uint8_t hdr[4];
        evbuffer_copyout(in, hdr, 4);
        int32_t size = (int32_t)be32(hdr);
        if (size < 4 || size > GR_KCLIENT_MAX_RESPONSE) {
            snprintf(why, sizeof why, "response size %d outside 4..%d", size,
                     GR_KCLIENT_MAX_RESPONSE);
            teardown(c, GR_KCLIENT_ERR_PROTOCOL, why);
            settle(c);
            return;
        }
        if (avail - 4 < (size_t)size) {
            bufferevent_setwatermark(bev, EV_READ, 4 + (size_t)size, 0);
            return;
        }
        bufferevent_setwatermark(bev, EV_READ, 0, 0);
        kreq *r = c->inflight.head;
        if (!r) {
            teardown(c, GR_KCLIENT_ERR_PROTOCOL, "response with no request in flight");
            settle(c);
            return;
        }
        const uint8_t *frame = evbuffer_pullup(in, 4 + (ssize_t)size);
        if (!frame) {
            teardown(c, GR_ERR_NOMEM, "out of memory buffering a response");
            settle(c);
            return;
        }
        gr_reader rd;
        gr_reader_init(&rd, frame + 4, (size_t)size);
        gr_response_header h;
        gr_arena a;
        gr_arena_init(&a);
        int rc = gr_response_header_decode(&h, &rd, gr_response_header_version(r->key, r->version),
                                           &a);
        gr_arena_free(&a);
        if (rc != GR_OK || h.correlation_id != r->corr) {
            if (rc != GR_OK)
                snprintf(why, sizeof why, "malformed response header (%s)", gr_err_str(rc));
            else
                snprintf(why, sizeof why,
                         "response correlation id %d does not match the oldest request's %d",
                         h.correlation_id, r->corr);
            teardown(c, GR_KCLIENT_ERR_PROTOCOL, why);
            settle(c);
            return;
        }
        q_pop(&c->inflight);
        gr_reader body;
        gr_reader_init(&body, frame + 4 + rd.pos, (size_t)size - rd.pos);
        uint64_t gen = c->gen;
        complete(c, r, 0, &body);
        if (settle(c) || c->freeing || c->gen != gen)
            return; /* the connection (and bev) are gone */
        evbuffer_drain(in, 4 + (size_t)size);
    }
}

static void try_connect(gr_kclient *c);

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    gr_kclient *c = arg;
    char why[200];
    if (what & BEV_EVENT_CONNECTED) {
        c->state = ST_NEGOTIATING;
        freeaddrinfo(c->addrs);
        c->addrs = c->addr_cur = NULL;
        c->av_version = gr_api_lookup(GR_API_API_VERSIONS)->max_version;
        if (send_handshake(c) != GR_OK) {
            teardown(c, GR_KCLIENT_ERR_CONNECT, "cannot queue ApiVersions request");
            settle(c);
        }
        return;
    }
    int e = EVUTIL_SOCKET_ERROR();
    if (c->state == ST_CONNECTING && (what & BEV_EVENT_ERROR)) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        c->addr_cur = c->addr_cur ? c->addr_cur->ai_next : NULL;
        if (c->addr_cur) {
            try_connect(c);
            return;
        }
        GR_WARN(SUB, "cannot connect to %s: %s", c->endpoint, evutil_socket_error_to_string(e));
        teardown(c, GR_KCLIENT_ERR_CONNECT, NULL);
        settle(c);
        return;
    }
    if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof why, "closed by peer");
    else
        snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(e));
    if (c->inflight.head || c->state == ST_NEGOTIATING)
        GR_WARN(SUB, "%s: connection lost with requests in flight: %s", c->endpoint, why);
    else
        GR_DEBUG(SUB, "%s: connection closed: %s", c->endpoint, why);
    teardown(c, c->state == ST_NEGOTIATING ? GR_KCLIENT_ERR_CONNECT : GR_KCLIENT_ERR_DISCONNECTED,
             NULL);
    settle(c);
}

/* Starts a connect to c->addr_cur, moving on to the next address on
 * immediate failure. */
static void try_connect(gr_kclient *c)
{
    const char *why = "no address";
    for (; c->addr_cur; c->addr_cur = c->addr_cur->ai_next) {
        struct addrinfo *ai = c->addr_cur;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            why = strerror(errno);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
            close(fd);
            why = "out of memory";
            break;
        }
        bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
            return;
        why = strerror(errno);
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    GR_WARN(SUB, "cannot connect to %s: %s", c->endpoint, why);
    teardown(c, GR_KCLIENT_ERR_CONNECT, NULL);
    settle(c);
}

static void connect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_kclient *c = arg;
    if (c->state == ST_READY) {
        flush(c);
        settle(c);
        return;
    }
    if (c->state != ST_SCHEDULED)
        return;
    if (!c->pending.head) {
        c->state = ST_IDLE; /* every queued request timed out meanwhile */
        return;
    }
    /* libevent measures timeouts from its cached loop time, which may be a
     * little old: keep the backoff exact. */
    uint64_t now = now_ms();
    if (now < c->next_connect_ms) {
        struct timeval wait = ms_tv(c->next_connect_ms - now);
        event_add(c->connect_ev, &wait);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    c->state = ST_CONNECTING;
    struct timeval tv = ms_tv(GR_KCLIENT_SETUP_TIMEOUT_MS);
    event_add(c->setup_ev, &tv);
    /* Blocking resolution, see kclient.h. */
    int rc = getaddrinfo(c->host, port, &hints, &c->addrs);
    if (rc != 0) {
        c->addrs = NULL;
        GR_WARN(SUB, "cannot resolve %s: %s", c->endpoint, gai_strerror(rc));
        teardown(c, GR_KCLIENT_ERR_CONNECT, NULL);
        settle(c);
        return;
    }
    c->addr_cur = c->addrs;
    try_connect(c);
}

/* Makes sure a connection is on its way (pending is not empty). */
static void kick(gr_kclient *c)
{
    if (c->state != ST_IDLE)
        return;
    uint64_t now = now_ms();
    uint64_t delay = c->next_connect_ms > now ? c->next_connect_ms - now : 0;
    struct timeval tv = ms_tv(delay);
    event_add(c->connect_ev, &tv);
    c->state = ST_SCHEDULED;
}

/* ---- public ---- */

gr_kclient *gr_kclient_new(struct event_base *base, const char *host, int port,
                           const char *client_id)
{
    gr_kclient *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->port = port;
    c->host = strdup(host);
    c->client_id = client_id ? strdup(client_id) : NULL;
    c->connect_ev = evtimer_new(base, connect_cb, c);
    c->setup_ev = evtimer_new(base, setup_timeout_cb, c);
    if (!c->host || (client_id && !c->client_id) || !c->connect_ev || !c->setup_ev) {
        destroy(c);
        return NULL;
    }
    snprintf(c->endpoint, sizeof c->endpoint, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             port);
    c->next_corr = 1;
    c->backoff_ms = GR_KCLIENT_BACKOFF_MS;
    for (int i = 0; i < MAX_KEYS; i++)
        c->vmin[i] = c->vmax[i] = -1;
    return c;
}

void gr_kclient_free(gr_kclient *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = true;
    c->busy++; /* keep c while failing its requests */
    teardown(c, GR_KCLIENT_ERR_CLOSED, NULL);
    c->busy--;
    settle(c);
}

static int enqueue(gr_kclient *c, kreq *r, int timeout_ms)
{
    r->c = c;
    if (timeout_ms > 0) {
        r->timer = evtimer_new(c->base, req_timeout_cb, r);
        struct timeval tv = ms_tv((uint64_t)timeout_ms);
        if (!r->timer || event_add(r->timer, &tv) != 0) {
            req_free(r);
            return GR_ERR_NOMEM;
        }
    }
    if (c->state == ST_READY && !c->pending.head && r->frame &&
        peer_supports(c, r->key, r->version)) {
        if (write_req(c, r) != 0) {
            req_free(r);
            return GR_ERR_NOMEM;
        }
        return 0;
    }
    q_push(&c->pending, r);
    if (c->state == ST_READY) {
        /* A connect marker or a version the peer lacks: answered from the
         * loop (connect_cb flushes), never from inside send. */
        struct timeval zero = {0, 0};
        event_add(c->connect_ev, &zero);
    } else {
        kick(c);
    }
    return 0;
}

int gr_kclient_send(gr_kclient *c, int16_t api_key, int16_t version, const void *msg,
                    int timeout_ms, gr_kclient_cb cb, void *arg)
{
    if (c->freeing)
        return GR_KCLIENT_ERR_CLOSED;
    const gr_api_info *api = gr_api_lookup(api_key);
    if (!api || version < api->min_version || version > api->max_version || !cb)
        return GR_ERR_VERSION;
    kreq *r = calloc(1, sizeof *r);
    if (!r)
        return GR_ERR_NOMEM;
    r->key = api_key;
    r->version = version;
    r->cb = cb;
    r->arg = arg;
    r->corr = (int32_t)(c->next_corr++ & INT32_MAX);
    int rc = gr_kclient_encode_frame(api_key, version, r->corr, c->client_id, msg, &r->frame, &r->frame_len);
    if (rc != GR_OK) {
        free(r);
        return rc;
    }
    return enqueue(c, r, timeout_ms);
}

int gr_kclient_connect(gr_kclient *c, int timeout_ms, gr_kclient_cb cb, void *arg)
{
    if (c->freeing)
        return GR_KCLIENT_ERR_CLOSED;
    if (!cb)
        return GR_ERR_VERSION;
    kreq *r = calloc(1, sizeof *r);
    if (!r)
        return GR_ERR_NOMEM;
    r->cb = cb;
    r->arg = arg;
    r->key = -1;
    return enqueue(c, r, timeout_ms);
}

int16_t gr_kclient_version(gr_kclient *c, int16_t api_key, int16_t max_wanted)
{
    const gr_api_info *api = gr_api_lookup(api_key);
    if (!c->negotiated || !api || api_key < 0 || api_key >= MAX_KEYS || c->vmax[api_key] < 0)
        return -1;
    int16_t hi = api->max_version;
    if (c->vmax[api_key] < hi)
        hi = c->vmax[api_key];
    if (max_wanted < hi)
        hi = max_wanted;
    int16_t lo = api->min_version > c->vmin[api_key] ? api->min_version : c->vmin[api_key];
    return hi >= lo ? hi : -1;
}

bool gr_kclient_connected(const gr_kclient *c) { return c->state == ST_READY; }

const char *gr_kclient_endpoint(const gr_kclient *c) { return c->endpoint; }

/* ---- blocking call ---- */

typedef struct {
    struct event_base *base;
    bool done;
    int err;
    int16_t key, version;
    gr_arena *arena;
    void *out;
} call_state;

static void call_connected(void *arg, int err, gr_reader *body)
{
    (void)body;
    call_state *s = arg;
    s->done = true;
    s->err = err;
    event_base_loopbreak(s->base);
}

static void call_response(void *arg, int err, gr_reader *body)
{
    call_state *s = arg;
    s->done = true;
    s->err = err;
    event_base_loopbreak(s->base);
    if (err)
        return;
    /* The decoded strings point into the bytes decoded, which must outlive
     * this callback: decode a copy kept in the arena. */
    size_t n = gr_reader_remaining(body);
    uint8_t *copy = gr_arena_alloc(s->arena, n ? n : 1);
    if (!copy) {
        s->err = GR_ERR_NOMEM;
        return;
    }
    memcpy(copy, body->p + body->pos, n);
    gr_reader r;
    gr_reader_init(&r, copy, n);
    int rc = gr_response_decode(s->key, s->version, &r, s->arena, &s->out);
    if (rc == GR_ERR_NOMEM)
        s->err = rc;
    else if (rc != GR_OK)
        s->err = GR_KCLIENT_ERR_PROTOCOL;
}

/* Runs the loop until s->done. Every request has a timer, so this ends. */
static void call_wait(call_state *s)
{
    while (!s->done)
        if (event_base_loop(s->base, EVLOOP_ONCE) < 0)
            break;
}

int gr_kclient_call(const char *host, int port, int16_t api_key, int16_t version,
                    const void *msg, int timeout_ms, gr_arena *arena, void **out,
                    int16_t *used_version)
{
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    struct event_base *base = event_base_new();
    if (!base)
        return GR_ERR_NOMEM;
    gr_kclient *c = gr_kclient_new(base, host, port, "gregor");
    if (!c) {
        event_base_free(base);
        return GR_ERR_NOMEM;
    }
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    call_state s = {.base = base, .key = api_key, .arena = arena};
    int rc = GR_OK;
    if (version < 0) {
        const gr_api_info *api = gr_api_lookup(api_key);
        rc = api ? gr_kclient_connect(c, timeout_ms, call_connected, &s) : GR_ERR_VERSION;
        if (rc == GR_OK) {
            call_wait(&s);
            rc = s.done ? s.err : GR_KCLIENT_ERR_CONNECT;
        }
        if (rc == GR_OK) {
            version = gr_kclient_version(c, api_key, api->max_version);
            if (version < 0)
                rc = GR_KCLIENT_ERR_UNSUPPORTED;
        }
    }
    if (rc == GR_OK) {
        uint64_t now = now_ms();
        int left = now < deadline ? (int)(deadline - now) : 1;
        s = (call_state){.base = base, .key = api_key, .version = version, .arena = arena};
        rc = gr_kclient_send(c, api_key, version, msg, left, call_response, &s);
        if (rc == GR_OK) {
            call_wait(&s);
            rc = s.done ? s.err : GR_KCLIENT_ERR_CONNECT;
        }
    }
    gr_kclient_free(c);
    event_base_free(base);
    if (rc == GR_OK) {
        *out = s.out;
        if (used_version)
            *used_version = version;
    }
    return rc;
}
