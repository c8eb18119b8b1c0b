/* cluster.c - see cluster.h. */
#include "broker/cluster.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/offsets_topic.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/kclient.h"
#include "common/logging.h"
#include "common/metadata_sm.h"
#include "common/quorum.h"

#define SUB "broker"
#define REGISTER_RETRY_MS 250
#define SHUTDOWN_WAIT_MS 30000
#define FORWARD_TIMEOUT_MS 30000
#define FORWARD_ATTEMPTS (FORWARD_TIMEOUT_MS / FORWARD_RETRY_MS) /* through a failover */
#define FORWARD_RETRY_MS 300

struct gr_cluster {
    gr_broker *b;
    struct event_base *base;
    gr_quorum *quorum;
    gr_metadata_sm sm;
    pthread_rwlock_t lock;
    gr_voter voters[16];
    int nvoters;
    gr_kclient *ctl; /* to the active controller */
    int32_t ctl_id;
    gr_uuid incarnation;
    int64_t broker_epoch; /* -1 until registered */
    bool in_flight;       /* a registration or heartbeat is out */
    bool fenced;
    struct event *timer;
    int32_t heartbeat_ms;
    bool closing; /* being freed: cancelled calls must not reschedule */
    bool shutting_down;
    int64_t shutdown_started;
    void (*done)(void *);
    void *done_arg;
    struct create_topic *creating; /* topic creations awaiting an answer */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The client to the active controller, (re)made when the leader changes. */
static gr_kclient *controller_client(gr_cluster *c)
{
    int32_t leader = gr_quorum_leader(c->quorum);
    if (leader < 0)
        return NULL;
    if (c->ctl && c->ctl_id == leader)
        return c->ctl;
    const gr_voter *v = gr_quorum_voter(c->quorum, leader);
    if (!v)
        return NULL;
    gr_kclient *old = c->ctl;
    char client_id[64];
    snprintf(client_id, sizeof client_id, "broker-%d", c->b->node_id);
    c->ctl = gr_kclient_new(c->base, v->host, v->port, client_id);
    c->ctl_id = leader;
    if (old)
        gr_kclient_free(old); /* its requests complete with errors */
    return c->ctl;
}

/* The controller said it is not the active one: ask the quorum again. */
static void forget_controller(gr_cluster *c)
{
    if (c->ctl) {
        gr_kclient *old = c->ctl;
        c->ctl = NULL;
        c->ctl_id = -1;
        gr_kclient_free(old);
    }
}

static void schedule(gr_cluster *c, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

/* ---- registration and heartbeats ---- */

typedef struct {
    gr_cluster *c;
    int16_t version;
} call;

static void on_registration(void *arg, int err, gr_reader *body)
{
    call *k = arg;
    gr_cluster *c = k->c;
    int16_t version = k->version;
    free(k);
    c->in_flight = false;
    if (err == GR_KCLIENT_ERR_CLOSED) { /* the client was replaced or we are closing */
        if (!c->closing)
            schedule(c, REGISTER_RETRY_MS);
        return;
    }
    gr_arena a;
    gr_arena_init(&a);
    gr_broker_registration_response r;
    if (err == 0 && gr_broker_registration_response_decode(&r, body, version, &a) == GR_OK) {
        if (r.error_code == GR_NONE) {
            c->broker_epoch = r.broker_epoch;
            GR_INFO(SUB, "node %d registered with controller %d, broker epoch %lld",
                    c->b->node_id, c->ctl_id, (long long)r.broker_epoch);
        } else {
            GR_WARN(SUB, "node %d: registration refused: %s", c->b->node_id,
                    gr_kafka_error_name(r.error_code));
            if (r.error_code == GR_NOT_CONTROLLER)
                forget_controller(c);
        }
    }
    gr_arena_free(&a);
    schedule(c, c->broker_epoch < 0 ? REGISTER_RETRY_MS : 0);
}

static void on_heartbeat(void *arg, int err, gr_reader *body)
{
    call *k = arg;
    gr_cluster *c = k->c;
    int16_t version = k->version;
    free(k);
    c->in_flight = false;
    if (err == GR_KCLIENT_ERR_CLOSED) {
        if (!c->closing)
            schedule(c, REGISTER_RETRY_MS);
        return;
    }
    gr_arena a;
    gr_arena_init(&a);
    gr_broker_heartbeat_response r;
    int64_t next = c->heartbeat_ms;
    if (err == 0 && gr_broker_heartbeat_response_decode(&r, body, version, &a) == GR_OK) {
        if (r.error_code == GR_NONE) {
            if (c->fenced != r.is_fenced)
                GR_INFO(SUB, "node %d is %s", c->b->node_id, r.is_fenced ? "fenced" : "unfenced");
            c->fenced = r.is_fenced;
            if (c->shutting_down && r.should_shut_down && c->done) {
                GR_INFO(SUB, "node %d: controlled shutdown complete", c->b->node_id);
                void (*done)(void *) = c->done;
                c->done = NULL;
                done(c->done_arg);
            }
            if (c->fenced || c->shutting_down)
                next = REGISTER_RETRY_MS; /* catch up (or finish) promptly */
        } else if (r.error_code == GR_NOT_CONTROLLER) {
            forget_controller(c);
            next = REGISTER_RETRY_MS;
        } else {
            GR_WARN(SUB, "node %d: heartbeat refused: %s; registering again", c->b->node_id,
                    gr_kafka_error_name(r.error_code));
            c->broker_epoch = -1;
            next = REGISTER_RETRY_MS;
        }
    } else if (c->shutting_down && c->done) {
        /* No controller to move our leaderships: nothing to wait for. */
        GR_WARN(SUB, "node %d: controller unreachable during controlled shutdown (%s); stopping",
                c->b->node_id, gr_kclient_strerror(err));
        void (*done)(void *) = c->done;
        c->done = NULL;
        gr_arena_free(&a);
        done(c->done_arg);
        return;
    } else {
        next = REGISTER_RETRY_MS;
    }
    gr_arena_free(&a);
    schedule(c, next);
}

static void send_registration(gr_cluster *c, gr_kclient *ctl)
{
    gr_broker *b = c->b;
    gr_broker_registration_request_listener ls[GR_BROKER_MAX_LISTENERS];
    gr_broker_registration_request req;
    gr_broker_registration_request_init(&req);
    req.broker_id = b->node_id;
    req.cluster_id = gr_str_from(b->cluster_id);
    req.incarnation_id = c->incarnation;
    for (int i = 0; i < b->nlisteners; i++) {
        gr_broker_registration_request_listener_init(&ls[i]);
        ls[i].name = gr_str_from(b->listeners[i].advertise.name);
        ls[i].host = gr_str_from(b->listeners[i].advertise.host);
        ls[i].port = (uint16_t)b->listeners[i].advertise.port;
        ls[i].security_protocol = 0; /* PLAINTEXT */
    }
    req.listeners = ls;
    req.listeners_count = b->nlisteners;
    req.features_count = 0;
    req.rack = b->rack[0] ? gr_str_from(b->rack) : GR_STR_NULL;
    call *k = malloc(sizeof *k);
    if (!k)
        return;
    *k = (call){c, gr_kclient_connected(ctl) ? gr_kclient_version(ctl, GR_API_BROKER_REGISTRATION, 4)
                                             : 4};
    if (k->version < 0 ||
        gr_kclient_send(ctl, GR_API_BROKER_REGISTRATION, k->version, &req, 5000, on_registration,
                        k) != 0) {
        free(k);
        return;
    }
    c->in_flight = true;
}

static void send_heartbeat(gr_cluster *c, gr_kclient *ctl)
{
    gr_broker_heartbeat_request req;
    gr_broker_heartbeat_request_init(&req);
    req.broker_id = c->b->node_id;
    req.broker_epoch = c->broker_epoch;
    req.current_metadata_offset = gr_quorum_applied(c->quorum) - 1;
    req.want_fence = false;
    req.want_shut_down = c->shutting_down;
    call *k = malloc(sizeof *k);
    if (!k)
        return;
    *k = (call){c, gr_kclient_connected(ctl) ? gr_kclient_version(ctl, GR_API_BROKER_HEARTBEAT, 1)
                                             : 1};
    if (k->version < 0 ||
        gr_kclient_send(ctl, GR_API_BROKER_HEARTBEAT, k->version, &req, 5000, on_heartbeat, k) != 0) {
        free(k);
        return;
    }
    c->in_flight = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_cluster *c = arg;
    if (c->shutting_down && c->done && mono_ms() - c->shutdown_started > SHUTDOWN_WAIT_MS) {
        GR_WARN(SUB, "node %d: controlled shutdown did not complete in time", c->b->node_id);
        void (*done)(void *) = c->done;
        c->done = NULL;
        done(c->done_arg);
        return;
    }
    if (c->in_flight)
        return;
    gr_kclient *ctl = controller_client(c);
    if (!ctl) {
        schedule(c, REGISTER_RETRY_MS);
        return;
    }
    if (c->broker_epoch < 0)
        send_registration(c, ctl);
    else
        send_heartbeat(c, ctl);
    if (!c->in_flight)
        schedule(c, REGISTER_RETRY_MS);
}

/* ---- forwarding ---- */

typedef struct {
    gr_cluster *c;
    gr_request *req;
    const void *msg;
    struct event_base *req_base;
    int attempts;
    uint8_t *body; /* the controller's response body, or NULL on failure */
    size_t len;
} forward;

static void forward_finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    forward *f = arg;
    int rc = GR_CLOSE;
    if (f->body) {
        gr_write_raw(&f->req->out, f->body, f->len);
        rc = GR_HANDLED;
    }
    gr_request_complete(f->req, rc);
    free(f->body);
    free(f);
}

/* Hands the outcome back to the request's network thread. */
static void forward_back(forward *f)
{
    if (event_base_once(f->req_base, -1, EV_TIMEOUT, forward_finish, f, &(struct timeval){0, 0}))
        GR_ERROR(SUB, "cannot hand a forwarded answer back to its network thread");
}

static void forward_send(evutil_socket_t fd, short what, void *arg);

static void forward_done(void *arg, int err, gr_reader *body)
{
    forward *f = arg;
    if (err == 0) {
        size_t n = gr_reader_remaining(body);
        f->body = malloc(n ? n : 1);
        if (f->body) {
            memcpy(f->body, body->p + body->pos, n);
            f->len = n;
        }
        forward_back(f);
        return;
    }
    gr_cluster *c = f->c;
    if (err != GR_KCLIENT_ERR_CLOSED)
        forget_controller(c); /* it may have stopped being the active one */
    if (++f->attempts < FORWARD_ATTEMPTS && err != GR_KCLIENT_ERR_CLOSED) {
        event_base_once(c->base, -1, EV_TIMEOUT, forward_send, f,
                        &(struct timeval){0, FORWARD_RETRY_MS * 1000});
        return;
    }
    forward_back(f);
}

static void forward_send(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    forward *f = arg;
    gr_cluster *c = f->c;
    gr_kclient *ctl = controller_client(c);
    if (!ctl) {
        if (++f->attempts < FORWARD_ATTEMPTS) {
            event_base_once(c->base, -1, EV_TIMEOUT, forward_send, f,
                            &(struct timeval){0, FORWARD_RETRY_MS * 1000});
            return;
        }
        forward_back(f);
        return;
    }
    if (gr_kclient_send(ctl, f->req->api_key, f->req->api_version, f->msg, FORWARD_TIMEOUT_MS,
                        forward_done, f) != 0)
        forward_back(f);
}

int gr_cluster_forward(gr_cluster *c, gr_request *req, const void *msg)
{
    forward *f = calloc(1, sizeof *f);
    if (!f)
        return GR_CLOSE;
    *f = (forward){.c = c, .req = req, .msg = msg, .req_base = gr_request_base(req)};
    if (event_base_once(c->base, -1, EV_TIMEOUT, forward_send, f, &(struct timeval){0, 0}) != 0) {
        free(f);
        return GR_CLOSE;
    }
    return GR_PENDING;
}

/* A topic creation this broker asked for and has no answer to yet. Main
 * loop only. FindCoordinator asks on every call until the internal topic
 * has leaders, so a name already being created is not asked for again. */
typedef struct create_topic {
    gr_cluster *c;
    struct create_topic *next;
    char name[256];
} create_topic;

static void create_topic_unlink(create_topic *t)
{
    for (create_topic **p = &t->c->creating; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            return;
        }
}

static void create_topic_done(void *arg, int err, gr_reader *body)
{
    (void)err;
    (void)body;
    create_topic *t = arg;
    create_topic_unlink(t);
    free(t);
}

static int32_t live_brokers(const gr_metadata_image *img)
{
    int32_t n = 0;
    size_t nb = img ? gr_metadata_broker_count(img) : 0;
    for (size_t i = 0; i < nb; i++) {
        const gr_metadata_broker *br = gr_metadata_broker_at(img, i);
        n += !br->fenced && !br->in_controlled_shutdown;
    }
    return n;
}

static void create_topic_send(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    create_topic *t = arg;
    gr_cluster *c = t->c;
    for (create_topic *o = c->creating; o; o = o->next)
        if (strcmp(o->name, t->name) == 0) {
            free(t); /* already asked for */
            return;
        }
    gr_kclient *ctl = controller_client(c);
    gr_create_topics_request req;
    gr_create_topics_request_creatable_topic topic;
    gr_create_topics_request_creatable_topic_config cfgs[GR_INTERNAL_TOPIC_MAX_CONFIGS];
    gr_internal_topic_spec spec;
    gr_create_topics_request_init(&req);
    gr_create_topics_request_creatable_topic_init(&topic);
    topic.name = gr_str_from(t->name);
    topic.num_partitions = -1;
    topic.replication_factor = -1;
    /* The main loop is the image's only writer: reading it needs no lock. */
    if (gr_internal_topic_spec_for(c->b->config, topic.name, live_brokers(c->sm.img), &spec)) {
        topic.num_partitions = spec.partitions;
        topic.replication_factor = spec.replication_factor;
        for (int i = 0; i < spec.nconfigs; i++) {
            gr_create_topics_request_creatable_topic_config_init(&cfgs[i]);
            cfgs[i].name = gr_str_from(spec.configs[i].name);
            cfgs[i].value = gr_str_from(spec.configs[i].value);
        }
        topic.configs = cfgs;
        topic.configs_count = spec.nconfigs;
        if (spec.capped)
            GR_WARN(SUB, "creating internal topic %s with replication factor %d: only %d live "
                    "broker(s), fewer than the configured %d", t->name, spec.replication_factor,
                    spec.replication_factor, spec.wanted_replication_factor);
        GR_INFO(SUB, "creating internal topic %s: %d partitions, replication factor %d", t->name,
                spec.partitions, spec.replication_factor);
    } else {
        GR_INFO(SUB, "auto-creating topic %s", t->name);
    }
    req.topics = &topic;
    req.topics_count = 1;
    req.timeout_ms = FORWARD_TIMEOUT_MS;
    t->next = c->creating; /* linked first: the answer unlinks it */
    c->creating = t;
    if (!ctl || gr_kclient_send(ctl, GR_API_CREATE_TOPICS, 4, &req, FORWARD_TIMEOUT_MS,
                                create_topic_done, t) != 0) {
        create_topic_unlink(t);
        free(t);
    }
}

void gr_cluster_create_topic(gr_cluster *c, gr_str name)
{
    create_topic *t = malloc(sizeof *t);
    if (!t || name.len <= 0 || (size_t)name.len >= sizeof t->name) {
        free(t);
        return;
    }
    t->c = c;
    t->next = NULL;
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = 0;
    if (event_base_once(c->base, -1, EV_TIMEOUT, create_topic_send, t, &(struct timeval){0, 0}))
        free(t);
}

/* ---- life ---- */

/* The image changed (an entry applied, or a snapshot loaded): the replica
 * manager follows. On the main loop, the image's only writer, so reading
 * it here needs no lock. */
static void on_applied(void *ctx, int64_t offset)
{
    (void)offset;
    gr_cluster *c = ctx;
    if (c->b->replicas)
        gr_replica_sync(c->b->replicas, c->sm.img);
}

static void on_reloaded(void *ctx) { on_applied(ctx, -1); }

const gr_metadata_image *gr_cluster_read_lock(gr_cluster *c)
{
    pthread_rwlock_rdlock(&c->lock);
    return c->sm.img;
}

void gr_cluster_read_unlock(gr_cluster *c) { pthread_rwlock_unlock(&c->lock); }

int32_t gr_cluster_controller(const gr_cluster *c) { return gr_quorum_leader(c->quorum); }

gr_cluster *gr_cluster_start(gr_broker *b, struct event_base *base)
{
    gr_cluster *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    char err[256];
    c->b = b;
    c->base = base;
    c->broker_epoch = -1;
    c->ctl_id = -1;
    c->heartbeat_ms = gr_config_int(b->config, "broker.heartbeat.interval.ms");
    pthread_rwlock_init(&c->lock, NULL);
    c->nvoters = gr_voters_parse(gr_config_str(b->config, "controller.quorum.voters"), c->voters,
                                 16, err, sizeof err);
    if (c->nvoters <= 0) {
        GR_ERROR("config", "invalid value for controller.quorum.voters: %s", err);
        free(c);
        return NULL;
    }
    if (getrandom(c->incarnation.b, 16, 0) != 16)
        c->incarnation.b[0] = 1;
    c->sm = (gr_metadata_sm){
        .lock = &c->lock, .ctx = c, .applied = on_applied, .reloaded = on_reloaded};
    char dir[4096];
    gr_broker_first_log_dir(b, dir, sizeof dir);
    gr_quorum_config qc = {
        .node_id = b->node_id,
        .voters = c->voters,
        .n_voters = (size_t)c->nvoters,
        .dir = dir,
        .cluster_id = b->cluster_id,
        .snapshot_bytes = 20 << 20,
        .sm = gr_metadata_sm_callbacks(&c->sm),
    };
    gr_raft_config_defaults(&qc.raft);
    c->timer = evtimer_new(base, on_timer, c);
    if (!c->timer || !(c->quorum = gr_quorum_open(base, &qc))) {
        gr_cluster_free(c);
        return NULL;
    }
    schedule(c, 0);
    return c;
}

void gr_cluster_shutdown(gr_cluster *c, void (*done)(void *arg), void *arg)
{
    if (c->broker_epoch < 0 || !gr_quorum_voter(c->quorum, gr_quorum_leader(c->quorum))) {
        done(arg); /* never registered, or no controller to ask */
        return;
    }
    GR_INFO(SUB, "node %d: asking the controller for a controlled shutdown", c->b->node_id);
    c->shutting_down = true;
    c->shutdown_started = mono_ms();
    c->done = done;
    c->done_arg = arg;
    if (!c->in_flight)
        schedule(c, 0);
}

void gr_cluster_free(gr_cluster *c)
{
    if (!c)
        return;
    c->closing = true;
    forget_controller(c);
    if (c->timer)
        event_free(c->timer);
    gr_quorum_close(c->quorum);
    gr_metadata_image_free(c->sm.img);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}
