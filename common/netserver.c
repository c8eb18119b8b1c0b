/* netserver.c - see netserver.h for the threading model and framing rules. */
#include "common/netserver.h"

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
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/api_versions.h"
#include "common/logging.h"

/* Stop reading from a client whose unsent responses exceed this. */
#define OUTPUT_HIGH_WATER (16u << 20)
/* The smallest request header: api key, api version, correlation id. */
#define MIN_HEADER 8
#define MAX_LISTENERS 16

typedef struct worker worker;
typedef struct gr_conn conn;

struct gr_conn {
    worker *w;
    struct bufferevent *bev;
    conn *prev, *next;   /* the worker's connection list */
    gr_request *pending; /* the request a handler has not completed yet */
    struct event *hup;   /* while pending: the peer closing (reading is paused) */
    bool throttled;      /* reading paused until responses drain */
    int listener;
    uint64_t id;
    char peer[INET6_ADDRSTRLEN + 8];
};

/* What the acceptor sends a network thread through its handoff pipe. */
typedef struct {
    int fd;
    int listener;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} handoff;

/* A network thread, or (num_threads == 0) the caller's own loop. */
struct worker {
    gr_netserver *srv;
    int index;
    struct event_base *base;
    pthread_t thread;
    bool own_thread;
    int pipe_rd, pipe_wr;
    struct event *handoff_ev;
    conn *conns;
    size_t nconns;
};

typedef struct {
    gr_netserver *srv;
    int index;
} listener_ctx;

struct gr_netserver {
    gr_netserver_config cfg;
    struct event_base *base;
    struct evconnlistener *listeners[MAX_LISTENERS];
    listener_ctx lctx[MAX_LISTENERS];
    worker *workers; /* cfg.num_threads of them, or one sharing base */
    int nworkers;
    int started;
    unsigned next_worker;
    atomic_uint_fast64_t next_conn_id;
};

const gr_api_handler *gr_api_table_lookup(const gr_api_table *t, int16_t key)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->handlers[i].key == key)
            return &t->handlers[i];
    return NULL;
}

/* ---- connections ---- */

static void conn_free(conn *c)
{
    worker *w = c->w;
    if (c->hup)
        event_free(c->hup);
    if (c->pending) {
        /* The handler still holds the request: it is freed on completion,
         * which its gone hook may bring forward. */
        gr_request *req = c->pending;
        req->conn = NULL;
        c->pending = NULL;
        if (req->gone)
            req->gone(req, req->gone_arg);
    }
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

/* Closes and frees c. A non-NULL `why` is a protocol violation, logged as a
 * warning; clients going away is routine and logged at debug level. */
static void conn_close(conn *c, const char *why)
{
    if (why)
        GR_WARN("net", "closing connection %llu from %s: %s", (unsigned long long)c->id, c->peer,
                why);
    else
        GR_DEBUG("net", "connection %llu from %s closed", (unsigned long long)c->id, c->peer);
    conn_free(c);
}

static void update_reading(conn *c)
{
    if (c->pending || c->throttled)
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
}

static void free_response(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* The heap frame of a response sent in pieces around file ranges: freed
 * when libevent has let go of the last piece. */
typedef struct {
    uint8_t *data;
    _Atomic int refs;
} shared_frame;

static void shared_frame_unref(shared_frame *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        free(f->data);
        free(f);
    }
}

static void free_piece(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    shared_frame_unref(arg);
}

static void file_segment_done(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    (void)seg;
    (void)flags;
    gr_file_range_unref(arg);
}

/* Appends the range to out, to be sent straight from the file. The segment holds a reference on the range until libevent has
 * sent or dropped it; it never closes the descriptor. */
static int add_file_range(struct evbuffer *out, gr_file_range *r)
{
    struct evbuffer_file_segment *seg =
        evbuffer_file_segment_new(r->fd, r->offset, r->len, EVBUF_FS_DISABLE_LOCKING);
    if (!seg)
        return -1;
    gr_file_range_ref(r);
    evbuffer_file_segment_add_cleanup_cb(seg, file_segment_done, r);
    /* Offset and length are relative to the segment's own range. */
    int rc = evbuffer_add_file_segment(out, seg, 0, r->len);
    evbuffer_file_segment_free(seg); /* out keeps it while it needs it */
    return rc;
}

/* Queues a frame whose body has file ranges spliced in at files' points:
 * memory pieces by reference into one shared heap frame, ranges as file
 * segments. A failure after the first piece leaves a partial frame in the
 * output, so the caller closes the connection. */
static int queue_spliced(struct evbuffer *out, uint8_t *data, size_t len, const gr_splices *files)
{
    shared_frame *f = malloc(sizeof *f);
    if (!f) {
        free(data);
        return -1;
    }
    f->data = data;
    atomic_init(&f->refs, 1); /* ours, until every piece is queued */
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; i <= files->npoints && rc == 0; i++) {
        size_t end = i < files->npoints ? files->points[i].pos : len;
        if (end > at) {
            atomic_fetch_add(&f->refs, 1);
            if (evbuffer_add_reference(out, data + at, end - at, free_piece, f) != 0) {
                atomic_fetch_sub(&f->refs, 1);
                rc = -1;
            }
            at = end;
        }
        if (rc == 0 && i < files->npoints)
            rc = add_file_range(out, files->points[i].range);
    }
    shared_frame_unref(f);
    return rc;
}

/* Queues a finished frame (4 size bytes reserved at the front of w), with
 * the file ranges of files (NULL: none) spliced in. */
static int queue_frame(conn *c, gr_writer *w, gr_splices *files)
{
    if (!gr_writer_ok(w))
        return -1;
    uint64_t file_bytes = files ? gr_splices_trim(files) : 0;
    if (w->len - 4 + file_bytes > INT32_MAX)
        return -1;
    gr_write_i32_at(w, 0, (int32_t)(w->len - 4 + file_bytes));
    size_t len;
    uint8_t *data = gr_writer_take(w, &len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (files && files->npoints > 0)
        return queue_spliced(out, data, len, files);
    if (evbuffer_add_reference(out, data, len, free_response, NULL) != 0) {
        free(data);
        return -1;
    }
    return 0;
}

int gr_request_file_records(gr_request *req, int fd, int64_t offset, size_t len,
                            void (*release)(void *arg), void *arg, gr_bytes *records)
{
    return gr_splices_add(&req->files, fd, offset, len, release, arg, records);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *api_name(int16_t key)
{
    const gr_api_info *info = gr_api_lookup(key);
    return info ? info->name : "?";
}

static void request_free(gr_request *req)
{
    gr_splices_free(&req->files); /* ranges not handed to libevent are released */
    gr_writer_free(&req->out);
    gr_arena_free(&req->arena);
    free(req);
}

/* Sends (or not) the response of a finished request. Returns 0, or -1 if
 * the connection was closed. */
static int finish(conn *c, gr_request *req, int rc)
{
    char why[160];
    if (rc == GR_HANDLED && queue_frame(c, &req->out, &req->files) != 0)
        rc = GR_CLOSE;
    if (rc == GR_CLOSE)
        snprintf(why, sizeof why, "cannot handle %s v%d request (correlation id %d)",
                 api_name(req->api_key), req->api_version, req->header.correlation_id);
    request_free(req);
    if (rc == GR_CLOSE) {
        conn_close(c, why);
        return -1;
    }
    return 0;
}

/* A peer that closes while its request waits: with reading paused the
 * bufferevent would not see it, so a long poll or an acks=all produce of a
 * vanished client would hold its connection (descriptor, buffers) and its
 * request until its deadline, which the client chose. Where the backend
 * reports a peer's close without reading (EV_CLOSED), the connection closes
 * at once. */
static void hangup_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->pending)
        conn_close(c, NULL);
}

static void watch_hangup(conn *c)
{
    if (!(event_base_get_features(c->w->base) & EV_FEATURE_EARLY_CLOSE))
        return;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd < 0)
        return;
    if (!c->hup && !(c->hup = event_new(c->w->base, fd, EV_CLOSED, hangup_cb, c)))
        return; /* out of memory: noticed at completion, as without the feature */
    if (event_add(c->hup, NULL) != 0)
        GR_DEBUG("net", "connection %llu: cannot watch for the peer closing",
                 (unsigned long long)c->id);
}

/* Handles one complete frame. Returns 0 when the frame is done with, 1 when
 * a handler kept it pending, -1 when the connection was closed. */
static int handle_frame(conn *c, const uint8_t *frame, size_t size)
{
    gr_netserver *s = c->w->srv;
    char why[160];
    int16_t key = (int16_t)(frame[0] << 8 | frame[1]);
    int16_t version = (int16_t)(frame[2] << 8 | frame[3]);
    int32_t correlation_id = (int32_t)be32(frame + 4);

    const gr_api_handler *h = gr_api_table_lookup(s->cfg.apis, key);
    if (!h) {
        snprintf(why, sizeof why, "unknown api key %d", key);
        conn_close(c, why);
        return -1;
    }
    if (version < h->min_version || version > h->max_version) {
        if (key == GR_API_API_VERSIONS) {
            GR_INFO("net", "ApiVersions v%d from %s is not supported: answering with v0", version,
                    c->peer);
            gr_writer w;
            gr_writer_init(&w, 64);
            gr_write_i32(&w, 0);
            gr_write_i32(&w, correlation_id);
            int rc = gr_api_versions_unsupported(s->cfg.apis, &w);
            if (rc != GR_OK || queue_frame(c, &w, NULL) != 0) {
                gr_writer_free(&w);
                conn_close(c, "cannot encode response");
                return -1;
            }
            gr_writer_free(&w);
            return 0;
        }
        snprintf(why, sizeof why, "unsupported version %d of api key %d (%s)", version, key,
                 api_name(key));
        conn_close(c, why);
        return -1;
    }

    gr_request *req = calloc(1, sizeof *req);
    if (!req) {
        conn_close(c, "out of memory");
        return -1;
    }
    req->ctx = s->cfg.ctx;
    req->apis = s->cfg.apis;
    req->api_key = key;
    req->api_version = version;
    req->listener = c->listener;
    req->peer = c->peer;
    req->conn = c;
    gr_arena_init(&req->arena);
    gr_reader r;
    gr_reader_init(&r, frame, size);
    int rc = gr_request_header_decode(&req->header, &r, gr_request_header_version(key, version),
                                      &req->arena);
    if (rc != GR_OK) {
        request_free(req);
        snprintf(why, sizeof why, "malformed request header (%s)", gr_err_str(rc));
        conn_close(c, why);
        return -1;
    }
    gr_reader_init(&req->body, frame + r.pos, size - r.pos);

    gr_writer_init(&req->out, 256);
    gr_splices_init(&req->files, &req->out);
    gr_write_i32(&req->out, 0); /* size, patched by queue_frame */
    gr_response_header rh;
    gr_response_header_init(&rh);
    rh.correlation_id = correlation_id;
    gr_response_header_encode(&rh, gr_response_header_version(key, version), &req->out);

    req->early_rc = -1;
    req->in_handler = true;
    rc = h->handle(req, &req->out);
    req->in_handler = false;
    if (rc == GR_PENDING && req->early_rc >= 0)
        rc = req->early_rc; /* completed from inside the handler */
    if (rc == GR_PENDING) {
        /* The frame stays in the input buffer, which does not move while
         * reading is paused, so the handler's views into it stay valid. */
        c->pending = req;
        update_reading(c);
        watch_hangup(c);
        return 1;
    }
    return finish(c, req, rc) == 0 ? 0 : -1;
}

/* Processes every complete frame buffered on c. */
static void conn_process(conn *c)
{
    struct bufferevent *bev = c->bev;
    struct evbuffer *in = bufferevent_get_input(bev);
    int32_t max = c->w->srv->cfg.max_request_bytes;
    char why[128];

    while (!c->pending && !c->throttled) {
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
        const uint8_t *frame = evbuffer_pullup(in, 4 + (ssize_t)size);
        if (!frame) {
            conn_close(c, "out of memory buffering request");
            return;
        }
        int rc = handle_frame(c, frame + 4, (size_t)size);
        if (rc < 0)
            return; /* c is gone */
        if (rc > 0)
            return; /* pending: the frame is drained on completion */
        evbuffer_drain(in, 4 + (size_t)size);

        if (evbuffer_get_length(bufferevent_get_output(bev)) > OUTPUT_HIGH_WATER) {
            /* The client is not reading its responses: stop reading its
             * requests until they drain (conn_write_cb resumes). */
            c->throttled = true;
            update_reading(c);
            bufferevent_setwatermark(bev, EV_WRITE, OUTPUT_HIGH_WATER / 2, 0);
            return;
        }
    }
}

void gr_request_on_gone(gr_request *req, void (*gone)(gr_request *req, void *arg), void *arg)
{
    req->gone = gone;
    req->gone_arg = arg;
}

struct event_base *gr_request_base(const gr_request *req)
{
    return req->conn ? req->conn->w->base : NULL;
}

void gr_request_complete(gr_request *req, int rc)
{
    if (req->in_handler) { /* handle_frame finishes it when the handler returns */
        req->early_rc = rc;
        return;
    }
    conn *c = req->conn;
    if (!c) { /* the client went away while we were working */
        request_free(req);
        return;
    }
    if (c->hup)
        event_del(c->hup);
    /* The request's frame is still at the front of the input buffer. */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    uint8_t hdr[4];
    evbuffer_copyout(in, hdr, 4);
    size_t size = be32(hdr);
    c->pending = NULL;
    if (finish(c, req, rc) != 0)
        return;
    evbuffer_drain(in, 4 + size);
    update_reading(c);
    conn_process(c); /* frames that arrived meanwhile */
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (c->throttled) {
        c->throttled = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        update_reading(c);
        conn_process(c); /* frames already buffered */
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        GR_INFO("net", "closing connection %llu from %s: idle longer than connections.max.idle.ms",
                (unsigned long long)c->id, c->peer);
        conn_free(c);
    } else if (what & BEV_EVENT_ERROR) {
        GR_DEBUG("net", "connection %llu from %s failed: %s", (unsigned long long)c->id, c->peer,
                 strerror(EVUTIL_SOCKET_ERROR()));
        conn_free(c);
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
    int64_t idle_ms = w->srv->cfg.idle_ms;
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
             (unsigned long long)c->id, c->peer, w->srv->cfg.listeners[c->listener].name,
             w->index);
}

/* ---- network threads ---- */

static void handoff_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    handoff h;
    for (;;) {
        ssize_t n = read(fd, &h, sizeof h);
        if (n != (ssize_t)sizeof h)
            return; /* EAGAIN: drained (writes of < PIPE_BUF bytes are atomic) */
        conn_open(w, &h);
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* At shutdown the loop stops with answers possibly still queued (waiting
 * fetches are answered just before the network threads stop). Writes what
 * each connection has queued, within a shared deadline, so a client gets
 * the answer rather than a reset connection. */
static void flush_on_exit(worker *w, int64_t budget_ms)
{
    int64_t deadline = mono_ms() + budget_ms;
    for (conn *c = w->conns; c; c = c->next) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        while (fd >= 0 && evbuffer_get_length(out) > 0) {
            int64_t left = deadline - mono_ms();
            if (left <= 0)
                return;
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, (int)left) <= 0 || !(pfd.revents & POLLOUT))
                break;
            if (evbuffer_write(out, fd) < 0 && errno != EAGAIN && errno != EINTR)
                break;
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    flush_on_exit(w, 1000);
    while (w->conns)
        conn_free(w->conns);
    return NULL;
}

static int worker_init(gr_netserver *s, worker *w, int index)
{
    int fds[2];
    w->srv = s;
    w->index = index;
    w->own_thread = true;
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

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    listener_ctx *lc = arg;
    gr_netserver *s = lc->srv;
    handoff h = {.fd = fd, .listener = lc->index, .addrlen = (socklen_t)salen};
    memcpy(&h.addr, sa, (size_t)salen < sizeof h.addr ? (size_t)salen : sizeof h.addr);
    worker *w = &s->workers[s->next_worker++ % (unsigned)s->nworkers];
    if (!w->own_thread) {
        conn_open(w, &h);
        return;
    }
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
    /* EMFILE and friends are transient: keep listening, say why. */
    GR_WARN("net", "accept failed: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static struct evconnlistener *bind_listener(gr_netserver *s, int index)
{
    const gr_listener *l = &s->cfg.listeners[index];
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
    s->lctx[index] = (listener_ctx){s, index};
    struct evconnlistener *ev = NULL;
    for (struct addrinfo *ai = res; ai && !ev; ai = ai->ai_next)
        ev = evconnlistener_new_bind(s->base, accept_cb, &s->lctx[index],
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
    s->listeners[index] = ev;
    GR_INFO("net", "listening on %s://%s:%d", l->name, l->host, gr_netserver_port(s, index));
    return ev;
}

int gr_netserver_port(const gr_netserver *s, int listener)
{
    if (listener < 0 || listener >= s->cfg.nlisteners || !s->listeners[listener])
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t fd = evconnlistener_get_fd(s->listeners[listener]);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

gr_netserver *gr_netserver_new(struct event_base *base, const gr_netserver_config *cfg)
{
    static atomic_int threads_enabled;
    if (cfg->nlisteners > MAX_LISTENERS) {
        GR_ERROR("net", "at most %d listeners", MAX_LISTENERS);
        return NULL;
    }
    if (cfg->num_threads > 0 && !atomic_exchange(&threads_enabled, 1) &&
        evthread_use_pthreads() != 0) {
        GR_ERROR("net", "libevent has no thread support");
        return NULL;
    }
    gr_netserver *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->base = base;
    atomic_init(&s->next_conn_id, 1);
    s->nworkers = cfg->num_threads > 0 ? cfg->num_threads : 1;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers)
        goto fail;
    for (int i = 0; i < s->nworkers; i++)
        s->workers[i].pipe_rd = s->workers[i].pipe_wr = -1;
    if (cfg->num_threads == 0) {
        s->workers[0] = (worker){.srv = s, .base = base, .pipe_rd = -1, .pipe_wr = -1};
    } else {
        for (int i = 0; i < s->nworkers; i++)
            if (worker_init(s, &s->workers[i], i) != 0) {
                GR_ERROR("net", "cannot set up network thread %d", i);
                goto fail;
            }
    }
    for (int i = 0; i < cfg->nlisteners; i++)
        if (!(s->listeners[i] = bind_listener(s, i)))
            goto fail;
    return s;
fail:
    gr_netserver_free(s);
    return NULL;
}

int gr_netserver_start(gr_netserver *s)
{
    for (; s->started < s->nworkers; s->started++) {
        worker *w = &s->workers[s->started];
        if (w->own_thread && pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            GR_ERROR("net", "cannot start network thread %d", s->started);
            return -1;
        }
    }
    GR_INFO(s->cfg.subsystem ? s->cfg.subsystem : "net", "serving with %d network thread%s",
            s->cfg.num_threads > 0 ? s->cfg.num_threads : 0, s->cfg.num_threads == 1 ? "" : "s");
    return 0;
}

void gr_netserver_free(gr_netserver *s)
{
    if (!s)
        return;
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (s->listeners[i])
            evconnlistener_free(s->listeners[i]);
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        worker *w = &s->workers[i];
        if (!w->own_thread) {
            while (w->conns)
                conn_free(w->conns);
            continue;
        }
        if (i < s->started) {
            event_base_loopexit(w->base, NULL);
            pthread_join(w->thread, NULL);
        }
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
    free(s);
}
