/* server.c - see server.h for the threading model and framing rules. */
#include "broker/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/request.h"
#include "common/logging.h"

/* Stop reading from a client whose unsent responses exceed this. */
#define OUTPUT_HIGH_WATER (16u << 20)
/* The smallest request header: api key, api version, correlation id. */
#define MIN_HEADER 8

typedef struct worker worker;
typedef struct conn conn;
static void conn_free(conn *c, worker *w);

struct conn {
    worker *w;
    struct bufferevent *bev;
    conn *prev, *next; /* the worker's connection list */
    int listener;
    uint64_t id;
    char peer[INET6_ADDRSTRLEN + 8];
};

/* What the acceptor sends a worker through its handoff pipe. */
typedef struct {
    int fd;
    int listener;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} handoff;

struct worker {
    gr_server *srv;
    int index;
    struct event_base *base;
    pthread_t thread;
    int pipe_rd, pipe_wr;
    struct event *handoff_ev;
    conn *conns;
    size_t nconns;
};

struct gr_server {
    gr_broker *broker;
    struct event_base *base;
    struct evconnlistener *listeners[GR_BROKER_MAX_LISTENERS];
    worker *workers;
    int nworkers;
    unsigned next_worker;
    struct event *sig_int, *sig_term;
    atomic_uint_fast64_t next_conn_id;
};

/* ---- connections ---- */

/* Closes and frees c. A non-NULL `why` is a protocol violation, logged as a
 * warning; clients going away is routine and logged at debug level. */
static void conn_close(conn *c, const char *why)
{
    worker *w = c->w;
    if (why)
        GR_WARN("net", "closing connection %llu from %s: %s", (unsigned long long)c->id, c->peer,
                why);
    else
        GR_DEBUG("net", "connection %llu from %s closed", (unsigned long long)c->id, c->peer);
    conn_free(c, w);
}

static void conn_free(conn *c, worker *w)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    bufferevent_free(c->bev);
    free(c);
}

static void free_response(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Queues a finished frame (4 size bytes reserved at the front of w). */
static int queue_frame(conn *c, gr_writer *w)
{
    if (!gr_writer_ok(w))
        return -1;
    gr_write_i32_at(w, 0, (int32_t)(w->len - 4));
    size_t len;
    uint8_t *data = gr_writer_take(w, &len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_add_reference(out, data, len, free_response, NULL) != 0) {
        free(data);
        return -1;
    }
    return 0;
}

/* Answers an ApiVersions request whose version we do not support, as Kafka
 * does: response header v0 and a v0 body carrying UNSUPPORTED_VERSION and
 * the versions we do support, so the client can retry with one of them. */
static int answer_unsupported_api_versions(conn *c, int32_t correlation_id)
{
    gr_writer w;
    gr_writer_init(&w, 256);
    gr_write_i32(&w, 0);
    gr_write_i32(&w, correlation_id);
    int rc = gr_api_versions_unsupported(&w);
    if (rc == GR_OK)
        rc = queue_frame(c, &w);
    gr_writer_free(&w);
    return rc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Handles one complete frame. Returns 0, or -1 if the connection was closed. */
static int handle_frame(conn *c, const uint8_t *frame, size_t size)
{
    gr_broker *b = c->w->srv->broker;
    char why[160];
    int16_t key = (int16_t)(frame[0] << 8 | frame[1]);
    int16_t version = (int16_t)(frame[2] << 8 | frame[3]);
    int32_t correlation_id = (int32_t)be32(frame + 4);

    const gr_api_handler *h = gr_api_handler_lookup(key);
    if (!h) {
        snprintf(why, sizeof why, "unknown api key %d", key);
        conn_close(c, why);
        return -1;
    }
    if (version < h->min_version || version > h->max_version) {
        if (key == GR_API_API_VERSIONS) {
            GR_INFO("net", "ApiVersions v%d from %s is not supported: answering with v0", version,
                    c->peer);
            if (answer_unsupported_api_versions(c, correlation_id) != 0) {
                conn_close(c, "cannot encode response");
                return -1;
            }
            return 0;
        }
        snprintf(why, sizeof why, "unsupported version %d of api key %d (%s)", version, key,
                 gr_api_lookup(key) ? gr_api_lookup(key)->name : "?");
        conn_close(c, why);
        return -1;
    }

    gr_request req = {.broker = b, .api_key = key, .api_version = version,
                      .listener = c->listener, .peer = c->peer};
    gr_arena_init(&req.arena);
    gr_reader r;
    gr_reader_init(&r, frame, size);
    int rc = gr_request_header_decode(&req.header, &r, gr_request_header_version(key, version),
                                      &req.arena);
    if (rc != GR_OK) {
        gr_arena_free(&req.arena);
        snprintf(why, sizeof why, "malformed request header (%s)", gr_err_str(rc));
        conn_close(c, why);
        return -1;
    }
    gr_reader_init(&req.body, frame + r.pos, size - r.pos);

    gr_writer out;
    gr_writer_init(&out, 256);
    gr_write_i32(&out, 0); /* size, patched by queue_frame */
    gr_response_header rh;
    gr_response_header_init(&rh);
    rh.correlation_id = correlation_id;
    gr_response_header_encode(&rh, gr_response_header_version(key, version), &out);

    rc = h->handle(&req, &out);
    if (rc == GR_HANDLED && queue_frame(c, &out) != 0)
        rc = GR_CLOSE;
    gr_writer_free(&out);
    gr_arena_free(&req.arena);
    if (rc == GR_CLOSE) {
        snprintf(why, sizeof why, "cannot handle %s v%d request (correlation id %d)",
                 gr_api_lookup(key) ? gr_api_lookup(key)->name : "?", version, correlation_id);
        conn_close(c, why);
        return -1;
    }
    return 0;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int32_t max = c->w->srv->broker->socket_request_max_bytes;
    char why[128];

    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < 4)
            return;
        uint8_t hdr[4];
        evbuffer_copyout(in, hdr, 4);
        int32_t size = (int32_t)be32(hdr);
        if (size < 0 || size > max) {
            snprintf(why, sizeof why, "request size %d outside 0..socket.request.max.bytes (%d)",
                     size, max);
            conn_close(c, why);
            return;
        }
        if (size < MIN_HEADER) {
            snprintf(why, sizeof why, "request of %d bytes is too short for a header", size);
            conn_close(c, why);
            return;
        }
        if (avail - 4 < (size_t)size) {
            /* Wake up only when the whole frame is here. */
            bufferevent_setwatermark(bev, EV_READ, 4 + (size_t)size, 0);
            return;
        }
        bufferevent_setwatermark(bev, EV_READ, 0, 0);
        evbuffer_drain(in, 4);
        const uint8_t *frame = evbuffer_pullup(in, size);
        if (!frame) {
            conn_close(c, "out of memory buffering request");
            return;
        }
        if (handle_frame(c, frame, (size_t)size) != 0)
            return; /* c is gone */
        evbuffer_drain(in, (size_t)size);

        if (evbuffer_get_length(bufferevent_get_output(bev)) > OUTPUT_HIGH_WATER) {
            /* The client is not reading its responses: stop reading its
             * requests until they drain (conn_write_cb resumes). */
            bufferevent_disable(bev, EV_READ);
            bufferevent_setwatermark(bev, EV_WRITE, OUTPUT_HIGH_WATER / 2, 0);
            return;
        }
    }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (!(bufferevent_get_enabled(bev) & EV_READ)) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(bev, EV_READ);
        conn_read_cb(bev, c); /* frames already buffered */
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        GR_INFO("net", "closing connection %llu from %s: idle longer than connections.max.idle.ms",
                (unsigned long long)c->id, c->peer);
        conn_free(c, c->w);
    } else if (what & BEV_EVENT_ERROR) {
        GR_DEBUG("net", "connection %llu from %s failed: %s", (unsigned long long)c->id, c->peer,
                 strerror(EVUTIL_SOCKET_ERROR()));
        conn_free(c, c->w);
    } else if (what & BEV_EVENT_EOF) {
        conn_close(c, NULL);
    }
}

static void format_peer(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, len, "%s:%d", host, port);
}

static void conn_open(worker *w, const handoff *h)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        GR_ERROR("net", "out of memory accepting a connection");
        close(h->fd);
        return;
    }
    c->w = w;
    c->listener = h->listener;
    c->id = atomic_fetch_add(&w->srv->next_conn_id, 1);
    format_peer((const struct sockaddr *)&h->addr, c->peer, sizeof c->peer);
    c->bev = bufferevent_socket_new(w->base, h->fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        GR_ERROR("net", "cannot create a buffer for connection from %s", c->peer);
        close(h->fd);
        free(c);
        return;
    }
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int64_t idle_ms = gr_config_long(w->srv->broker->config, "connections.max.idle.ms");
    if (idle_ms > 0) {
        struct timeval tv = {idle_ms / 1000, (idle_ms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, &tv, NULL);
    }
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    GR_DEBUG("net", "connection %llu from %s on listener %s, network thread %d",
             (unsigned long long)c->id, c->peer, w->srv->broker->listeners[c->listener].bind.name,
             w->index);
}

/* ---- workers ---- */

static void handoff_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    handoff h;
    for (;;) {
        ssize_t n = read(fd, &h, sizeof h);
        if (n == (ssize_t)sizeof h)
            conn_open(w, &h);
        else
            return; /* EAGAIN: drained (writes of < PIPE_BUF bytes are atomic) */
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    while (w->conns)
        conn_free(w->conns, w);
    return NULL;
}

static int worker_init(gr_server *s, worker *w, int index)
{
    int fds[2];
    w->srv = s;
    w->index = index;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    w->pipe_rd = fds[0];
    w->pipe_wr = fds[1];
    /* Room for thousands of handoffs, so a burst of connections never finds
     * a busy thread's pipe full (the default 64 KiB holds ~450). */
    fcntl(w->pipe_wr, F_SETPIPE_SZ, 1 << 20);
    w->base = event_base_new();
    if (!w->base)
        return -1;
    w->handoff_ev = event_new(w->base, w->pipe_rd, EV_READ | EV_PERSIST, handoff_cb, w);
    if (!w->handoff_ev || event_add(w->handoff_ev, NULL) != 0)
        return -1;
    return 0;
}

/* ---- acceptor ---- */

typedef struct {
    gr_server *srv;
    int index;
} listener_ctx;

static listener_ctx g_listener_ctx[GR_BROKER_MAX_LISTENERS];

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    listener_ctx *lc = arg;
    gr_server *s = lc->srv;
    handoff h = {.fd = fd, .listener = lc->index, .addrlen = (socklen_t)salen};
    memcpy(&h.addr, sa, (size_t)salen < sizeof h.addr ? (size_t)salen : sizeof h.addr);
    worker *w = &s->workers[s->next_worker++ % (unsigned)s->nworkers];
    if (write(w->pipe_wr, &h, sizeof h) != (ssize_t)sizeof h) {
        GR_ERROR("net", "cannot hand a connection to network thread %d: %s", w->index,
                 strerror(errno));
        close(fd);
    }
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    /* EMFILE and friends are transient: keep listening, say why. */
    GR_WARN("net", "accept failed: %s", evutil_socket_error_to_string(err));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    gr_server *s = arg;
    GR_INFO("broker", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(s->base, NULL);
}

static struct evconnlistener *bind_listener(gr_server *s, int index)
{
    const gr_listener *l = &s->broker->listeners[index].bind;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", l->port);
    int rc = getaddrinfo(l->host[0] ? l->host : NULL, port, &hints, &res);
    if (rc != 0) {
        GR_ERROR("net", "cannot resolve listener %s://%s:%d: %s", l->name, l->host, l->port,
                 gai_strerror(rc));
        return NULL;
    }
    g_listener_ctx[index] = (listener_ctx){s, index};
    struct evconnlistener *ev = NULL;
    for (struct addrinfo *ai = res; ai && !ev; ai = ai->ai_next)
        ev = evconnlistener_new_bind(s->base, accept_cb, &g_listener_ctx[index],
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
                                         LEV_OPT_REUSEABLE,
                                     4096, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(res);
    if (!ev) {
        GR_ERROR("net", "cannot listen on %s://%s:%d: %s", l->name, l->host, l->port,
                 strerror(errno));
        return NULL;
    }
    evconnlistener_set_error_cb(ev, accept_error_cb);
    GR_INFO("net", "listening on %s://%s:%d", l->name, l->host, l->port);
    return ev;
}

gr_server *gr_server_new(gr_broker *broker)
{
    static int threads_enabled;
    if (!threads_enabled && evthread_use_pthreads() != 0) {
        GR_ERROR("net", "libevent has no thread support");
        return NULL;
    }
    threads_enabled = 1;

    gr_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->broker = broker;
    atomic_init(&s->next_conn_id, 1);
    s->base = event_base_new();
    s->nworkers = broker->num_network_threads;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->base || !s->workers)
        goto fail;
    for (int i = 0; i < s->nworkers; i++)
        s->workers[i].pipe_rd = s->workers[i].pipe_wr = -1;
    for (int i = 0; i < s->nworkers; i++)
        if (worker_init(s, &s->workers[i], i) != 0) {
            GR_ERROR("net", "cannot start network thread %d", i);
            goto fail;
        }
    for (int i = 0; i < broker->nlisteners; i++)
        if (!(s->listeners[i] = bind_listener(s, i)))
            goto fail;
    s->sig_int = evsignal_new(s->base, SIGINT, signal_cb, s);
    s->sig_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
    if (!s->sig_int || !s->sig_term || event_add(s->sig_int, NULL) || event_add(s->sig_term, NULL))
        goto fail;
    return s;
fail:
    gr_server_free(s);
    return NULL;
}

int gr_server_run(gr_server *s)
{
    int started = 0;
    for (; started < s->nworkers; started++)
        if (pthread_create(&s->workers[started].thread, NULL, worker_main, &s->workers[started]))
            break;
    int rc = 0;
    if (started < s->nworkers) {
        GR_ERROR("net", "cannot start network threads");
        rc = -1;
    } else {
        GR_INFO("broker", "node %d serving with %d network threads", s->broker->node_id,
                s->nworkers);
        event_base_dispatch(s->base);
    }
    for (int i = 0; i < s->broker->nlisteners; i++)
        if (s->listeners[i]) {
            evconnlistener_free(s->listeners[i]);
            s->listeners[i] = NULL;
        }
    for (int i = 0; i < started; i++) {
        event_base_loopexit(s->workers[i].base, NULL);
        pthread_join(s->workers[i].thread, NULL);
    }
    return rc;
}

void gr_server_free(gr_server *s)
{
    if (!s)
        return;
    for (int i = 0; i < GR_BROKER_MAX_LISTENERS; i++)
        if (s->listeners[i])
            evconnlistener_free(s->listeners[i]);
    if (s->sig_int)
        event_free(s->sig_int);
    if (s->sig_term)
        event_free(s->sig_term);
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        worker *w = &s->workers[i];
        if (w->handoff_ev)
            event_free(w->handoff_ev);
        if (w->base)
            event_base_free(w->base);
        if (w->pipe_rd >= 0)
            close(w->pipe_rd);
        if (w->pipe_wr >= 0)
            close(w->pipe_wr);
    }
    free(s->workers);
    if (s->base)
        event_base_free(s->base);
    free(s);
}
