/*
 * control.c - the active controller's decisions (see control.h).
 *
 * Leader and ISR rules (Kafka's KRaft rules without eligible leader
 * replicas):
 *  - A broker is a possible leader when it is registered, unfenced and not in
 *    controlled shutdown. Leaders are chosen in the partition's replica order
 *    (preferred replica first) among the live ISR members.
 *  - When brokers leave (fenced by session expiry, want_fence, controlled
 *    shutdown, unregistration) they are removed from every ISR, except that
 *    an ISR never becomes empty: if every member leaves, the ISR keeps one
 *    member (the last leader when it was in the ISR, otherwise the first
 *    member) and the partition gets leader -1 (no leader). The leader
 *    changes only if it left.
 *  - With unclean.leader.election.enable (topic config, else the dynamic
 *    cluster-wide broker value, else the controller's static value, else
 *    false) a partition with no live ISR member instead takes the first
 *    live replica as leader, ISR [that replica], leader recovery state
 *    RECOVERING, as Kafka does.
 *  - When a broker is unfenced, every partition without a leader elects
 *    again with that broker counted live: a partition whose ISR holds it
 *    gets it back as leader (unclean election applies here too).
 *  - A leader change always carries the new leader, which bumps the leader
 *    epoch on apply; an ISR-only change does not.
 * ISR expansion (a recovered follower catching up) is the leader's business
 * through AlterPartition, not this module's.
 */
#include "controller/control.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/mdentry.h"
#include "common/names.h"
#include "common/topic_config.h"

#define MAX_PARTITIONS_PER_TOPIC 100000 /* a request bound, far above real use */

typedef struct {
    int32_t id;
    int64_t epoch;
    int64_t last_contact;
    int64_t deadline;
    bool has_session;
} hb_state;

struct gr_control {
    gr_metadata_image *img;
    gr_control_config cfg;
    uint64_t rng;
    hb_state *hb;
    int32_t nhb, hbcap;
};

/* ---- small helpers ---- */

static uint64_t rng_next(gr_control *c)
{
    /* splitmix64 */
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static char *cstr(gr_arena *a, gr_str s)
{
    if (s.len < 0)
        return NULL;
    return gr_arena_strdup(a, s.ptr ? s.ptr : "", (size_t)s.len);
}

static gr_str astr(gr_arena *a, const char *s)
{
    if (!s)
        return GR_STR_NULL;
    char *p = gr_arena_strdup(a, s, strlen(s));
    return p ? (gr_str){p, (int32_t)strlen(s)} : GR_STR_NULL;
}

static gr_str afmt(gr_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static gr_str afmt(gr_arena *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return astr(a, buf);
}

static bool str_eq(gr_str a, gr_str b)
{
    if (a.len < 0 || b.len < 0)
        return a.len == b.len;
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static gr_str str_of(const char *s) { return (gr_str){s, (int32_t)strlen(s)}; }

static bool ids_has(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

#define TRYM(x)                     \
    do {                            \
        if (!(x))                   \
            return GR_ERR_NOMEM;    \
    } while (0)

/* ---- configuration ---- */

void gr_control_config_defaults(gr_control_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_partitions = 1;
    cfg->default_replication_factor = 1;
    cfg->session_timeout_ms = 9000;
}

gr_control *gr_control_new(gr_metadata_image *img, const gr_control_config *cfg)
{
    gr_control *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->img = img;
    if (cfg)
        c->cfg = *cfg;
    else
        gr_control_config_defaults(&c->cfg);
    c->rng = c->cfg.seed;
    return c;
}

void gr_control_free(gr_control *c)
{
    if (!c)
        return;
    free(c->hb);
    free(c);
}

void gr_control_set_image(gr_control *c, gr_metadata_image *img) { c->img = img; }

static hb_state *hb_find(gr_control *c, int32_t id)
{
    for (int32_t i = 0; i < c->nhb; i++)
        if (c->hb[i].id == id)
            return &c->hb[i];
    return NULL;
}

static hb_state *hb_get(gr_control *c, int32_t id)
{
    hb_state *h = hb_find(c, id);
    if (h)
        return h;
    if (c->nhb == c->hbcap) {
        int32_t cap = c->hbcap ? c->hbcap * 2 : 8;
        hb_state *n = realloc(c->hb, (size_t)cap * sizeof *n);
        if (!n)
            return NULL;
        c->hb = n;
        c->hbcap = cap;
    }
    h = &c->hb[c->nhb++];
    memset(h, 0, sizeof *h);
    h->id = id;
    return h;
}

static void hb_remove(gr_control *c, int32_t id)
{
    hb_state *h = hb_find(c, id);
    if (h)
        *h = c->hb[--c->nhb];
}

static void hb_touch(gr_control *c, hb_state *h, int64_t epoch, int64_t now)
{
    h->epoch = epoch;
    h->last_contact = now;
    h->deadline = now + c->cfg.session_timeout_ms;
    h->has_session = true;
}

int gr_control_activate(gr_control *c, int64_t now)
{
    c->nhb = 0;
    size_t n = gr_metadata_broker_count(c->img);
    for (size_t i = 0; i < n; i++) {
        const gr_metadata_broker *b = gr_metadata_broker_at(c->img, i);
        if (b->fenced)
            continue;
        hb_state *h = hb_get(c, b->id);
        if (!h)
            return GR_ERR_NOMEM;
        hb_touch(c, h, b->epoch, now);
    }
    return GR_OK;
}

static bool broker_usable(const gr_metadata_broker *b)
{
    return b && !b->fenced && !b->in_controlled_shutdown;
}

/* ---- effective topic config values ---- */

static const char *static_value(const gr_control *c, const char *key)
{
    return c->cfg.static_config ? c->cfg.static_config(c->cfg.static_ctx, key) : NULL;
}

/* Converts a broker synonym's value to the topic key's unit (hours and
 * minutes variants of millisecond keys). */
static void synonym_value(const char *broker_key, const char *v, char *buf, size_t buflen)
{
    size_t n = strlen(broker_key);
    int64_t mult = 0;
    if (n > 6 && strcmp(broker_key + n - 6, ".hours") == 0)
        mult = 3600000;
    else if (n > 8 && strcmp(broker_key + n - 8, ".minutes") == 0)
        mult = 60000;
    if (mult) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (*end == '\0' && end != v) {
            snprintf(buf, buflen, "%lld", x * (long long)mult);
            return;
        }
    }
    snprintf(buf, buflen, "%s", v);
}

/* Value of a topic key below the topic level: dynamic cluster default, static, default. */
static void topic_default(const gr_control *c, const gr_config_def *def, char *buf, size_t buflen,
                          int8_t *source, const char **synonym)
{
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++) {
        const gr_topic_config_synonym *s = &gr_topic_config_synonyms[i];
        if (strcmp(s->topic_key, def->name) != 0)
            continue;
        gr_str v = gr_metadata_config(c->img, GR_METADATA_RESOURCE_BROKER, str_of(""), s->broker_key);
        if (v.len >= 0) {
            synonym_value(s->broker_key, v.ptr, buf, buflen);
            *source = GR_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER;
            *synonym = s->broker_key;
            return;
        }
    }
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++) {
        const gr_topic_config_synonym *s = &gr_topic_config_synonyms[i];
        if (strcmp(s->topic_key, def->name) != 0)
            continue;
        const char *v = static_value(c, s->broker_key);
        if (v) {
            synonym_value(s->broker_key, v, buf, buflen);
            *source = GR_CONFIG_SOURCE_STATIC_BROKER;
            *synonym = s->broker_key;
            return;
        }
    }
    snprintf(buf, buflen, "%s", def->dflt ? def->dflt : "");
    *source = GR_CONFIG_SOURCE_DEFAULT;
    *synonym = NULL;
}

int gr_control_topic_config(const gr_control *c, gr_str topic, const char *key, char *buf,
                            size_t buflen, int8_t *source)
{
    const gr_config_def *def = gr_topic_config_find(key);
    if (!def)
        return -1;
    int8_t src;
    const char *syn;
    gr_str v = gr_metadata_config(c->img, GR_METADATA_RESOURCE_TOPIC, topic, key);
    if (v.len >= 0) {
        snprintf(buf, buflen, "%.*s", (int)v.len, v.ptr);
        src = GR_CONFIG_SOURCE_TOPIC;
    } else {
        topic_default(c, def, buf, buflen, &src, &syn);
    }
    if (source)
        *source = src;
    return 0;
}

static bool unclean_enabled(const gr_control *c, gr_str topic)
{
    char buf[16];
    if (gr_control_topic_config(c, topic, "unclean.leader.election.enable", buf, sizeof buf, NULL))
        return false;
    return strcasecmp(buf, "true") == 0;
}

/* ---- leader and ISR decisions ---- */

/* Who is leaving or arriving in the decision being made. */
typedef struct {
    const int32_t *gone; /* brokers being fenced, shut down or unregistered */
    int32_t ngone;
    int32_t coming; /* a broker being unfenced, or -1 */
} liveness;

static bool is_live(const gr_control *c, const liveness *lv, int32_t id)
{
    if (id < 0)
        return false;
    if (id == lv->coming)
        return true;
    if (ids_has(lv->gone, lv->ngone, id))
        return false;
    return broker_usable(gr_metadata_broker_get(c->img, id));
}

/*
 * Applies the rules at the top of this file to one partition and adds a
 * PartitionChangeRecord to the entry if anything changes.
 */
static int elect(gr_control *c, const gr_metadata_topic *t, const gr_metadata_partition *p,
                 const liveness *lv, gr_arena *a, gr_mdentry_builder *b, bool *changed)
{
    int32_t n = p->isr.count;
    int32_t *isr = gr_arena_calloc(a, (size_t)(n > 0 ? n : 1), sizeof *isr);
    TRYM(isr);
    int32_t ni = 0;
    for (int32_t i = 0; i < n; i++)
        if (!ids_has(lv->gone, lv->ngone, p->isr.ids[i]))
            isr[ni++] = p->isr.ids[i];
    if (ni == 0 && n > 0)
        isr[ni++] = ids_has(p->isr.ids, n, p->leader) ? p->leader : p->isr.ids[0];

    int32_t leader = -1;
    int8_t recovery = -1;
    if (p->leader >= 0 && ids_has(isr, ni, p->leader) && is_live(c, lv, p->leader)) {
        leader = p->leader;
    } else {
        for (int32_t i = 0; i < p->replicas.count && leader < 0; i++) {
            int32_t r = p->replicas.ids[i];
            if (ids_has(isr, ni, r) && is_live(c, lv, r))
                leader = r;
        }
        if (leader < 0 && unclean_enabled(c, t->name)) {
            for (int32_t i = 0; i < p->replicas.count && leader < 0; i++)
                if (is_live(c, lv, p->replicas.ids[i]))
                    leader = p->replicas.ids[i];
            if (leader >= 0) {
                isr[0] = leader;
                ni = 1;
                recovery = 1; /* RECOVERING: the new leader may lack committed records */
            }
        }
    }

    bool isr_changed = ni != n || (n > 0 && memcmp(isr, p->isr.ids, (size_t)n * sizeof *isr) != 0);
    bool leader_changed = leader != p->leader;
    *changed = isr_changed || leader_changed;
    if (!*changed)
        return GR_OK;
    gr_partition_change_record r;
    gr_partition_change_record_init(&r);
    r.topic_id = t->id;
    r.partition_id = p->id;
    if (isr_changed) {
        r.isr = isr;
        r.isr_count = ni;
    }
    if (leader_changed)
        r.leader = leader;
    r.leader_recovery_state = recovery;
    return gr_mdentry_add_latest(b, GR_METADATA_RECORD_PARTITION_CHANGE, &r);
}

/* Runs elect over every partition that can be affected: those with a
 * leaving broker in the ISR or as leader, and (when a broker arrives)
 * those without a leader. */
static int elect_all(gr_control *c, const liveness *lv, gr_arena *a, gr_mdentry_builder *b)
{
    size_t nt = gr_metadata_topic_count(c->img);
    for (size_t ti = 0; ti < nt; ti++) {
        const gr_metadata_topic *t = gr_metadata_topic_at(c->img, ti);
        for (int32_t pi = 0; pi < t->partition_count; pi++) {
            const gr_metadata_partition *p = &t->partitions[pi];
            bool affected = (lv->coming >= 0 && p->leader < 0) ||
                            ids_has(lv->gone, lv->ngone, p->leader);
            for (int32_t k = 0; k < lv->ngone && !affected; k++)
                affected = ids_has(p->isr.ids, p->isr.count, lv->gone[k]);
            if (!affected)
                continue;
            bool changed;
            int err = elect(c, t, p, lv, a, b, &changed);
            if (err)
                return err;
        }
    }
    return b->err;
}

/* ---- brokers ---- */

static int16_t feature_check(const gr_control *c, const gr_broker_registration_request *req,
                             char *msg, size_t msglen)
{
    for (int32_t i = 0; i < req->features_count; i++) {
        const gr_broker_registration_request_feature *f = &req->features[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(f->name.len > 0 ? f->name.len : 0),
                 f->name.ptr ? f->name.ptr : "");
        int16_t level = gr_metadata_feature_level(c->img, name);
        if (level > 0 && (level < f->min_supported_version || level > f->max_supported_version)) {
            snprintf(msg, msglen,
                     "Unable to register because the broker does not support finalized version %d of "
                     "%s. The broker wants a version between %d and %d, inclusive.",
                     level, name, f->min_supported_version, f->max_supported_version);
            return GR_UNSUPPORTED_VERSION;
        }
    }
    return GR_NONE;
}

int gr_control_register_broker(gr_control *c, const gr_broker_registration_request *req,
                               int64_t next_offset, int64_t now, gr_arena *a,
                               gr_broker_registration_response *resp, gr_writer *entry)
{
    (void)a;
    resp->error_code = GR_NONE;
    resp->broker_epoch = -1;
    char msg[512];
    if (c->cfg.cluster_id && req->cluster_id.len >= 0 &&
        !str_eq(req->cluster_id, str_of(c->cfg.cluster_id))) {
        resp->error_code = GR_INCONSISTENT_CLUSTER_ID;
        return GR_OK;
    }
    if (req->broker_id < 0) {
        resp->error_code = GR_INVALID_REGISTRATION;
        return GR_OK;
    }
    int16_t ferr = feature_check(c, req, msg, sizeof msg);
    if (ferr) {
        resp->error_code = ferr;
        return GR_OK;
    }
    const gr_metadata_broker *old = gr_metadata_broker_get(c->img, req->broker_id);
    hb_state *h = hb_find(c, req->broker_id);
    if (old) {
        bool same = memcmp(old->incarnation_id.b, req->incarnation_id.b, 16) == 0;
        if (same) {
            /* A retry of a registration already made: same epoch, no entry. */
            hb_state *hh = hb_get(c, req->broker_id);
            if (!hh)
                return GR_ERR_NOMEM;
            hb_touch(c, hh, old->epoch, now);
            resp->broker_epoch = old->epoch;
            return GR_OK;
        }
        if (h && h->has_session && now <= h->deadline && h->epoch == old->epoch) {
            resp->error_code = GR_DUPLICATE_BROKER_REGISTRATION;
            return GR_OK;
        }
    }

    gr_register_broker_record r;
    gr_register_broker_record_init(&r);
    r.broker_id = req->broker_id;
    r.incarnation_id = req->incarnation_id;
    r.broker_epoch = next_offset;
    r.rack = req->rack;
    r.fenced = true;
    r.in_controlled_shutdown = false;
    r.is_migrating_zk_broker = false;
    gr_register_broker_record_broker_endpoint *eps = NULL;
    if (req->listeners_count > 0) {
        eps = gr_arena_calloc(a, (size_t)req->listeners_count, sizeof *eps);
        TRYM(eps);
        for (int32_t i = 0; i < req->listeners_count; i++) {
            eps[i].name = req->listeners[i].name;
            eps[i].host = req->listeners[i].host;
            eps[i].port = req->listeners[i].port;
            eps[i].security_protocol = req->listeners[i].security_protocol;
        }
    }
    r.end_points = eps;
    r.end_points_count = req->listeners_count > 0 ? req->listeners_count : 0;
    gr_register_broker_record_broker_feature *fs = NULL;
    if (req->features_count > 0) {
        fs = gr_arena_calloc(a, (size_t)req->features_count, sizeof *fs);
        TRYM(fs);
        for (int32_t i = 0; i < req->features_count; i++) {
            fs[i].name = req->features[i].name;
            fs[i].min_supported_version = req->features[i].min_supported_version;
            fs[i].max_supported_version = req->features[i].max_supported_version;
        }
    }
    r.features = fs;
    r.features_count = req->features_count > 0 ? req->features_count : 0;
    r.log_dirs = req->log_dirs;
    r.log_dirs_count = req->log_dirs_count > 0 ? req->log_dirs_count : 0;

    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    /* A broker that re-registers (new incarnation) while unfenced leaves its
     * old leaderships first: the new process starts fenced, with empty state. */
    if (old && broker_usable(old)) {
        int32_t gone = old->id;
        liveness lv = {&gone, 1, -1};
        int err = elect_all(c, &lv, a, &b);
        if (err)
            return err;
    }
    if (gr_mdentry_add_latest(&b, GR_METADATA_RECORD_REGISTER_BROKER, &r) || gr_mdentry_finish(&b))
        return GR_ERR_NOMEM;
    hb_state *hh = hb_get(c, req->broker_id);
    if (!hh)
        return GR_ERR_NOMEM;
    hb_touch(c, hh, next_offset, now);
    resp->broker_epoch = next_offset;
    return GR_OK;
}

/* Adds the records that fence one broker: leaderships and ISRs first, then the fence. */
static int fence_records(gr_control *c, const int32_t *ids, int32_t n, gr_arena *a,
                         gr_mdentry_builder *b)
{
    liveness lv = {ids, n, -1};
    int err = elect_all(c, &lv, a, b);
    if (err)
        return err;
    for (int32_t i = 0; i < n; i++) {
        const gr_metadata_broker *br = gr_metadata_broker_get(c->img, ids[i]);
        gr_fence_broker_record f;
        gr_fence_broker_record_init(&f);
        f.id = ids[i];
        f.epoch = br->epoch;
        if (gr_mdentry_add_latest(b, GR_METADATA_RECORD_FENCE_BROKER, &f))
            return b->err;
    }
    return GR_OK;
}

int gr_control_heartbeat(gr_control *c, const gr_broker_heartbeat_request *req, int64_t now,
                         gr_broker_heartbeat_response *resp, gr_writer *entry)
{
    resp->error_code = GR_NONE;
    resp->is_caught_up = false;
    resp->is_fenced = true;
    resp->should_shut_down = false;
    const gr_metadata_broker *br = gr_metadata_broker_get(c->img, req->broker_id);
    if (!br) {
        resp->error_code = GR_BROKER_ID_NOT_REGISTERED;
        return GR_OK;
    }
    if (br->epoch != req->broker_epoch) {
        resp->error_code = GR_STALE_BROKER_EPOCH;
        return GR_OK;
    }
    hb_state *h = hb_get(c, br->id);
    if (!h)
        return GR_ERR_NOMEM;
    hb_touch(c, h, br->epoch, now);

    bool caught_up = req->current_metadata_offset >= br->epoch;
    resp->is_caught_up = caught_up;
    gr_arena a;
    gr_arena_init(&a);
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    int err = GR_OK;
    int32_t id = br->id;

    if (req->want_shut_down) {
        if (!br->fenced) {
            /* Controlled shutdown: leave leaderships and ISRs; the broker
             * may stop once it leads nothing, and is then fenced. */
            if (!br->in_controlled_shutdown) {
                gr_broker_registration_change_record rc;
                gr_broker_registration_change_record_init(&rc);
                rc.broker_id = id;
                rc.broker_epoch = br->epoch;
                rc.fenced = 0;
                rc.in_controlled_shutdown = 1;
                gr_mdentry_add_latest(&b, GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE, &rc);
            }
            liveness lv = {&id, 1, -1};
            /* elect() changes no partition whose leader is another live broker. */
            if (!(err = elect_all(c, &lv, &a, &b))) {
                /* Everything it led moved (or lost its leader) in this entry. */
                gr_fence_broker_record f;
                gr_fence_broker_record_init(&f);
                f.id = id;
                f.epoch = br->epoch;
                gr_mdentry_add_latest(&b, GR_METADATA_RECORD_FENCE_BROKER, &f);
                resp->should_shut_down = true;
                resp->is_fenced = true;
                h->has_session = false;
            }
        } else {
            resp->should_shut_down = true;
            resp->is_fenced = true;
            h->has_session = false;
        }
    } else if (req->want_fence) {
        if (!br->fenced)
            err = fence_records(c, &id, 1, &a, &b);
        resp->is_fenced = true;
    } else if (br->fenced && br->in_controlled_shutdown) {
        /* As in Kafka nothing clears "in controlled shutdown" but a new
         * registration: this process stays fenced until it re-registers,
         * and has no session that could block the new registration. */
        resp->is_fenced = true;
        h->has_session = false;
    } else if (br->fenced) {
        if (caught_up) {
            gr_unfence_broker_record u;
            gr_unfence_broker_record_init(&u);
            u.id = id;
            u.epoch = br->epoch;
            gr_mdentry_add_latest(&b, GR_METADATA_RECORD_UNFENCE_BROKER, &u);
            liveness lv = {NULL, 0, id};
            err = elect_all(c, &lv, &a, &b);
            resp->is_fenced = false;
        }
    } else {
        resp->is_fenced = false;
    }
    gr_arena_free(&a);
    if (err || gr_mdentry_finish(&b))
        return GR_ERR_NOMEM;
    return GR_OK;
}

int gr_control_tick(gr_control *c, int64_t now, gr_writer *entry, int32_t *fenced)
{
    if (fenced)
        *fenced = 0;
    int32_t *ids = malloc((size_t)(c->nhb > 0 ? c->nhb : 1) * sizeof *ids);
    if (!ids)
        return GR_ERR_NOMEM;
    int32_t n = 0;
    for (int32_t i = 0; i < c->nhb; i++) {
        hb_state *h = &c->hb[i];
        if (!h->has_session || now <= h->deadline)
            continue;
        h->has_session = false;
        const gr_metadata_broker *br = gr_metadata_broker_get(c->img, h->id);
        if (br && br->epoch == h->epoch && !br->fenced)
            ids[n++] = h->id;
    }
    int err = GR_OK;
    if (n > 0) {
        gr_arena a;
        gr_arena_init(&a);
        gr_mdentry_builder b;
        gr_mdentry_builder_init(&b, entry);
        err = fence_records(c, ids, n, &a, &b);
        if (!err)
            err = gr_mdentry_finish(&b);
        gr_arena_free(&a);
    }
    free(ids);
    if (fenced)
        *fenced = n;
    return err ? GR_ERR_NOMEM : GR_OK;
}

int gr_control_unregister_broker(gr_control *c, const gr_unregister_broker_request *req,
                                 gr_arena *a, gr_unregister_broker_response *resp,
                                 gr_writer *entry)
{
    resp->error_code = GR_NONE;
    resp->error_message = GR_STR_NULL;
    const gr_metadata_broker *br = gr_metadata_broker_get(c->img, req->broker_id);
    if (!br) {
        resp->error_code = GR_BROKER_ID_NOT_REGISTERED;
        resp->error_message = afmt(a, "Broker ID %d is not currently registered", req->broker_id);
        return GR_OK;
    }
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    int32_t id = br->id;
    liveness lv = {&id, 1, -1};
    int err = elect_all(c, &lv, a, &b);
    if (err)
        return GR_ERR_NOMEM;
    gr_unregister_broker_record u;
    gr_unregister_broker_record_init(&u);
    u.broker_id = id;
    u.broker_epoch = br->epoch;
    if (gr_mdentry_add_latest(&b, GR_METADATA_RECORD_UNREGISTER_BROKER, &u) || gr_mdentry_finish(&b))
        return GR_ERR_NOMEM;
    hb_remove(c, id);
    return GR_OK;
}

/* ---- placement ---- */

/*
 * Brokers that can take new replicas: unfenced, not shutting down, by id.
 * Rack-aware order when every one of them has a rack and there are two
 * racks or more: racks by name, brokers interleaved one per rack in turn
 * (r1b1, r2b1, r3b1, r1b2, ...), as Kafka arranges them.
 */
typedef struct {
    int32_t *ids;
    gr_str *racks;
    int32_t n;
    int32_t nracks; /* 0: not rack-aware */
} broker_list;

static int rack_cmp(gr_str a, gr_str b)
{
    size_t n = (size_t)(a.len < b.len ? a.len : b.len);
    int k = n ? memcmp(a.ptr, b.ptr, n) : 0;
    return k ? k : (a.len > b.len) - (a.len < b.len);
}

static int usable_brokers(const gr_control *c, gr_arena *a, broker_list *out)
{
    size_t nb = gr_metadata_broker_count(c->img);
    out->ids = gr_arena_calloc(a, nb + 1, sizeof *out->ids);
    out->racks = gr_arena_calloc(a, nb + 1, sizeof *out->racks);
    TRYM(out->ids && out->racks);
    out->n = 0;
    out->nracks = 0;
    bool all_racks = true;
    for (size_t i = 0; i < nb; i++) {
        const gr_metadata_broker *b = gr_metadata_broker_at(c->img, i);
        if (!broker_usable(b))
            continue;
        out->ids[out->n] = b->id;
        out->racks[out->n] = b->rack;
        all_racks &= b->rack.len >= 0;
        out->n++;
    }
    if (!all_racks || out->n < 2)
        return GR_OK;
    /* Distinct racks, sorted (insertion sort: broker counts are small). */
    gr_str *racks = gr_arena_calloc(a, (size_t)out->n, sizeof *racks);
    TRYM(racks);
    int32_t nr = 0;
    for (int32_t i = 0; i < out->n; i++) {
        int32_t k = 0;
        while (k < nr && rack_cmp(racks[k], out->racks[i]) < 0)
            k++;
        if (k < nr && rack_cmp(racks[k], out->racks[i]) == 0)
            continue;
        memmove(&racks[k + 1], &racks[k], (size_t)(nr - k) * sizeof *racks);
        racks[k] = out->racks[i];
        nr++;
    }
    if (nr < 2)
        return GR_OK;
    int32_t *ids = gr_arena_calloc(a, (size_t)out->n, sizeof *ids);
    gr_str *rk = gr_arena_calloc(a, (size_t)out->n, sizeof *rk);
    int32_t *next = gr_arena_calloc(a, (size_t)nr, sizeof *next); /* per rack: brokers taken */
    TRYM(ids && rk && next);
    int32_t m = 0;
    while (m < out->n) {
        for (int32_t r = 0; r < nr; r++) {
            /* the next[r]-th broker (by id) of rack r */
            int32_t seen = 0;
            for (int32_t i = 0; i < out->n; i++) {
                if (rack_cmp(out->racks[i], racks[r]) != 0)
                    continue;
                if (seen++ == next[r]) {
                    ids[m] = out->ids[i];
                    rk[m] = out->racks[i];
                    m++;
                    next[r]++;
                    break;
                }
            }
        }
    }
    out->ids = ids;
    out->racks = rk;
    out->nracks = nr;
    return GR_OK;
}

static int32_t replica_index(int32_t first, int64_t shift, int32_t j, int32_t n)
{
    int64_t s = 1 + (shift + j) % (n - 1);
    return (int32_t)((first + s) % n);
}

/*
 * idxbuf holds rf ints of scratch.
 * Kafka's striped assignment: partition p's first replica is broker
 * (start + p) mod n and the followers come after it at a shift that moves
 * by one every n partitions, so leaders and replicas spread evenly; with
 * racks, a follower is skipped while its rack (or the broker) already has a
 * replica and other racks remain. out holds count * rf ids.
 */
static void place(gr_control *c, const broker_list *bl, int32_t first_pid, int32_t count,
                  int32_t rf, int32_t *out, int32_t *idxbuf)
{
    int32_t n = bl->n;
    int32_t start = (int32_t)(rng_next(c) % (uint64_t)n);
    int64_t shift = (int64_t)(rng_next(c) % (uint64_t)n);
    for (int32_t i = 0; i < count; i++) {
        int32_t pid = first_pid + i;
        if (pid > 0 && pid % n == 0)
            shift++;
        int32_t first = (int32_t)(((int64_t)pid + start) % n);
        int32_t *r = &out[(size_t)i * (size_t)rf];
        r[0] = bl->ids[first];
        int32_t have = 1;
        if (bl->nracks == 0) {
            for (int32_t j = 0; j < rf - 1; j++)
                r[have++] = bl->ids[replica_index(first, shift, j, n)];
            continue;
        }
        int32_t *chosen = idxbuf; /* indexes into bl of the replicas chosen so far */
        chosen[0] = first;
        int32_t racks_used = 1;
        int32_t k = 0;
        while (have < rf) {
            int32_t idx = -1;
            for (int32_t tries = 0; tries < 2 * n && idx < 0; tries++, k++) {
                int32_t cand = replica_index(first, shift * bl->nracks, k, n);
                bool rack_taken = false, broker_taken = false;
                for (int32_t q = 0; q < have; q++) {
                    broker_taken |= chosen[q] == cand;
                    rack_taken |= rack_cmp(bl->racks[chosen[q]], bl->racks[cand]) == 0;
                }
                if ((!rack_taken || racks_used == bl->nracks) && !broker_taken)
                    idx = cand;
            }
            if (idx < 0) /* not reached with rf <= n; stays safe if it were */
                for (int32_t w = 0; w < n && idx < 0; w++)
                    if (!ids_has(r, have, bl->ids[w]))
                        idx = w;
            bool new_rack = true;
            for (int32_t q = 0; q < have; q++)
                new_rack &= rack_cmp(bl->racks[chosen[q]], bl->racks[idx]) != 0;
            racks_used += new_rack;
            chosen[have] = idx;
            r[have++] = bl->ids[idx];
        }
    }
}

static gr_str rf_message(gr_arena *a, int32_t rf, int32_t n)
{
    return afmt(a,
                "Unable to replicate the partition %d time(s): The target replication factor of %d "
                "cannot be reached because only %d broker(s) are registered.",
                rf, rf, n);
}

/* Checks one manual replica list (Kafka's messages). expect_rf < 0: any length. */
static int16_t check_manual(const gr_control *c, const int32_t *ids, int32_t n, int32_t expect_rf,
                            int32_t pid, gr_arena *a, gr_str *msg)
{
    if (n <= 0) {
        *msg = astr(a, "The manual partition assignment includes an empty replica list.");
        return GR_INVALID_REPLICA_ASSIGNMENT;
    }
    bool any_live = false;
    for (int32_t i = 0; i < n; i++) {
        if (ids_has(ids, i, ids[i])) {
            *msg = afmt(a, "The manual partition assignment includes the broker %d more than once.",
                        ids[i]);
            return GR_INVALID_REPLICA_ASSIGNMENT;
        }
        const gr_metadata_broker *b = gr_metadata_broker_get(c->img, ids[i]);
        if (!b) {
            *msg = afmt(a,
                        "The manual partition assignment includes broker %d, but no such broker is "
                        "registered.",
                        ids[i]);
            return GR_INVALID_REPLICA_ASSIGNMENT;
        }
        any_live |= broker_usable(b);
    }
    if (expect_rf >= 0 && n != expect_rf) {
        *msg = afmt(a,
                    "The manual partition assignment includes a partition with %d replica(s), but "
                    "this is not consistent with previous partitions, which have %d replica(s).",
                    n, expect_rf);
        return GR_INVALID_REPLICA_ASSIGNMENT;
    }
    if (!any_live) {
        *msg = afmt(a,
                    "All brokers specified in the manual partition assignment for partition %d are "
                    "fenced or in controlled shutdown.",
                    pid);
        return GR_INVALID_REPLICA_ASSIGNMENT;
    }
    return GR_NONE;
}

/* PartitionRecord for a new partition: ISR = the live replicas, leader the first of them. */
static int add_partition(gr_control *c, gr_mdentry_builder *b, gr_arena *a, const gr_uuid *tid,
                         int32_t pid, const int32_t *replicas, int32_t rf)
{
    int32_t *isr = gr_arena_calloc(a, (size_t)rf, sizeof *isr);
    gr_uuid *dirs = gr_arena_calloc(a, (size_t)rf, sizeof *dirs);
    TRYM(isr && dirs);
    int32_t ni = 0;
    for (int32_t j = 0; j < rf; j++)
        if (broker_usable(gr_metadata_broker_get(c->img, replicas[j])))
            isr[ni++] = replicas[j];
    gr_partition_record p;
    gr_partition_record_init(&p);
    p.partition_id = pid;
    p.topic_id = *tid;
    p.replicas = (int32_t *)replicas;
    p.replicas_count = rf;
    p.isr = isr;
    p.isr_count = ni;
    p.removing_replicas_count = 0;
    p.adding_replicas_count = 0;
    p.leader = ni > 0 ? isr[0] : -1;
    p.leader_recovery_state = 0;
    p.leader_epoch = 0;
    p.partition_epoch = 0;
    p.directories = dirs; /* unassigned (zero) directory ids, one per replica */
    p.directories_count = rf;
    return gr_mdentry_add_latest(b, GR_METADATA_RECORD_PARTITION, &p);
}

/* ---- CreateTopics ---- */

static void topic_name_message(gr_arena *a, gr_str name, gr_str *msg)
{
    if (name.len <= 0)
        *msg = astr(a, "Topic name is illegal, it can't be empty");
    else if ((name.len == 1 && name.ptr[0] == '.') || (name.len == 2 && !memcmp(name.ptr, "..", 2)))
        *msg = astr(a, "Topic name cannot be \".\" or \"..\"");
    else if (name.len > GR_TOPIC_NAME_MAX)
        *msg = afmt(a,
                    "Topic name is illegal, it can't be longer than %d characters, topic name: %.*s",
                    GR_TOPIC_NAME_MAX, (int)name.len, name.ptr);
    else
        *msg = afmt(a,
                    "Topic name \"%.*s\" is illegal, it contains a character other than ASCII "
                    "alphanumerics, '.', '_' and '-'",
                    (int)name.len, name.ptr);
}

/* Same name once '.' and '_' are identified (metric names cannot tell them apart). */
static bool collides(gr_str x, gr_str y)
{
    if (x.len != y.len || x.len < 0)
        return false;
    for (int32_t i = 0; i < x.len; i++) {
        char p = x.ptr[i] == '.' ? '_' : x.ptr[i], q = y.ptr[i] == '.' ? '_' : y.ptr[i];
        if (p != q)
            return false;
    }
    return true;
}

static gr_uuid new_topic_id(gr_control *c)
{
    for (;;) {
        gr_uuid u;
        uint64_t x = rng_next(c), y = rng_next(c);
        memcpy(u.b, &x, 8);
        memcpy(u.b + 8, &y, 8);
        bool zero_or_reserved = true; /* zero and the metadata topic's id 0...01 are reserved */
        for (int i = 0; i < 15; i++)
            zero_or_reserved &= u.b[i] == 0;
        if (!zero_or_reserved && !gr_metadata_topic_by_id(c->img, &u))
            return u;
    }
}

static int fill_created_configs(gr_control *c, const gr_create_topics_request_creatable_topic *t,
                                gr_arena *a, gr_create_topics_response_creatable_topic_result *res)
{
    res->configs = gr_arena_calloc(a, gr_topic_config_ndefs, sizeof *res->configs);
    TRYM(res->configs);
    res->configs_count = (int32_t)gr_topic_config_ndefs;
    for (size_t i = 0; i < gr_topic_config_ndefs; i++) {
        const gr_config_def *def = &gr_topic_config_defs[i];
        gr_create_topics_response_creatable_topic_configs *o = &res->configs[i];
        gr_create_topics_response_creatable_topic_configs_init(o);
        o->name = str_of(def->name);
        o->read_only = false;
        o->is_sensitive = false;
        const gr_create_topics_request_creatable_topic_config *given = NULL;
        for (int32_t k = 0; k < t->configs_count; k++)
            if (gr_str_eq(t->configs[k].name, def->name))
                given = &t->configs[k];
        if (given) {
            o->value = given->value;
            o->config_source = GR_CONFIG_SOURCE_TOPIC;
        } else {
            char buf[256];
            const char *syn;
            topic_default(c, def, buf, sizeof buf, &o->config_source, &syn);
            o->value = astr(a, buf);
            TRYM(o->value.ptr);
        }
    }
    return GR_OK;
}

static int create_one(gr_control *c, const gr_create_topics_request_creatable_topic *t,
                      bool validate_only, int16_t version, const gr_str *earlier, int32_t nearlier,
                      gr_arena *a, gr_mdentry_builder *b,
                      gr_create_topics_response_creatable_topic_result *res)
{
    res->name = t->name;
    res->error_code = GR_NONE;
    res->error_message = GR_STR_NULL;
    res->num_partitions = -1;
    res->replication_factor = -1;
    res->configs = NULL;
    res->configs_count = -1;
    gr_str name = t->name;

    if (!gr_topic_name_valid(name)) {
        res->error_code = GR_INVALID_TOPIC_EXCEPTION;
        topic_name_message(a, name, &res->error_message);
        return GR_OK;
    }
    if (gr_metadata_topic_by_name(c->img, name)) {
        res->error_code = GR_TOPIC_ALREADY_EXISTS;
        res->error_message = afmt(a, "Topic '%.*s' already exists.", (int)name.len, name.ptr);
        return GR_OK;
    }
    gr_str clash = GR_STR_NULL;
    size_t nt = gr_metadata_topic_count(c->img);
    for (size_t i = 0; i < nt && clash.len < 0; i++) {
        const gr_metadata_topic *o = gr_metadata_topic_at(c->img, i);
        if (collides(o->name, name))
            clash = o->name;
    }
    for (int32_t i = 0; i < nearlier && clash.len < 0; i++)
        if (collides(earlier[i], name) && !str_eq(earlier[i], name))
            clash = earlier[i];
    if (clash.len >= 0) {
        res->error_code = GR_INVALID_TOPIC_EXCEPTION;
        res->error_message = afmt(a, "Topic '%.*s' collides with existing topic: %.*s", (int)name.len,
                                  name.ptr, (int)clash.len, clash.ptr);
        return GR_OK;
    }
    for (int32_t k = 0; k < t->configs_count; k++) {
        char key[256], val[1024], err[1024];
        snprintf(key, sizeof key, "%.*s", (int)(t->configs[k].name.len > 0 ? t->configs[k].name.len : 0),
                 t->configs[k].name.ptr ? t->configs[k].name.ptr : "");
        const char *v = NULL;
        if (t->configs[k].value.len >= 0) {
            snprintf(val, sizeof val, "%.*s", (int)t->configs[k].value.len, t->configs[k].value.ptr);
            v = val;
        }
        if (gr_topic_config_validate(key, v, err, sizeof err)) {
            res->error_code = GR_INVALID_CONFIG;
            res->error_message = astr(a, err);
            return GR_OK;
        }
    }

    int32_t np, rf;
    int32_t *assign; /* np * rf */
    if (t->assignments_count > 0) {
        if (t->num_partitions != -1) {
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, "A manual partition assignment was specified, but "
                                         "numPartitions was not set to -1.");
            return GR_OK;
        }
        if (t->replication_factor != -1) {
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, "A manual partition assignment was specified, but "
                                         "replicationFactor was not set to -1.");
            return GR_OK;
        }
        np = t->assignments_count;
        rf = t->assignments[0].broker_ids_count;
        if (rf <= 0)
            rf = 0;
        assign = gr_arena_calloc(a, (size_t)np * (size_t)(rf > 0 ? rf : 1), sizeof *assign);
        TRYM(assign);
        bool *seen = gr_arena_calloc(a, (size_t)np, sizeof *seen);
        TRYM(seen);
        for (int32_t i = 0; i < np; i++) {
            const gr_create_topics_request_creatable_replica_assignment *as = &t->assignments[i];
            int32_t pid = as->partition_index;
            if (pid >= 0 && pid < np && seen[pid]) {
                res->error_code = GR_INVALID_REPLICA_ASSIGNMENT;
                res->error_message =
                    afmt(a, "Found multiple manual partition assignments for partition %d", pid);
                return GR_OK;
            }
            int16_t e = check_manual(c, as->broker_ids, as->broker_ids_count, i == 0 ? -1 : rf, pid,
                                     a, &res->error_message);
            if (e) {
                res->error_code = e;
                return GR_OK;
            }
            if (pid < 0 || pid >= np) {
                res->error_code = GR_INVALID_REPLICA_ASSIGNMENT;
                res->error_message =
                    astr(a, "partitions should be a consecutive 0-based integer sequence");
                return GR_OK;
            }
            seen[pid] = true;
            memcpy(&assign[(size_t)pid * (size_t)rf], as->broker_ids, (size_t)rf * sizeof *assign);
        }
    } else {
        np = t->num_partitions == -1 ? c->cfg.num_partitions : t->num_partitions;
        rf = t->replication_factor == -1 ? c->cfg.default_replication_factor : t->replication_factor;
        if (np <= 0) {
            res->error_code = GR_INVALID_PARTITIONS;
            res->error_message = astr(a, "Number of partitions was set to an invalid non-positive value.");
            return GR_OK;
        }
        if (rf <= 0) {
            res->error_code = GR_INVALID_REPLICATION_FACTOR;
            res->error_message =
                astr(a, "Replication factor must be larger than 0, or -1 to use the default value.");
            return GR_OK;
        }
        if (np > MAX_PARTITIONS_PER_TOPIC) {
            res->error_code = GR_INVALID_PARTITIONS;
            res->error_message = afmt(a, "Number of partitions %d is larger than the limit of %d.",
                                      np, MAX_PARTITIONS_PER_TOPIC);
            return GR_OK;
        }
        broker_list bl;
        if (usable_brokers(c, a, &bl))
            return GR_ERR_NOMEM;
        if (rf > bl.n) {
            res->error_code = GR_INVALID_REPLICATION_FACTOR;
            res->error_message = rf_message(a, rf, bl.n);
            return GR_OK;
        }
        assign = gr_arena_calloc(a, (size_t)np * (size_t)rf, sizeof *assign);
        TRYM(assign);
        int32_t *scratch = gr_arena_calloc(a, (size_t)rf, sizeof *scratch);
        TRYM(scratch);
        if (!validate_only)
            place(c, &bl, 0, np, rf, assign, scratch);
    }

    res->num_partitions = np;
    res->replication_factor = (int16_t)rf;
    if (version >= 5 && fill_created_configs(c, t, a, res))
        return GR_ERR_NOMEM;
    if (validate_only)
        return GR_OK;

    gr_uuid id = new_topic_id(c);
    res->topic_id = id;
    gr_topic_record tr;
    gr_topic_record_init(&tr);
    tr.name = name;
    tr.topic_id = id;
    gr_mdentry_add_latest(b, GR_METADATA_RECORD_TOPIC, &tr);
    for (int32_t p = 0; p < np; p++)
        add_partition(c, b, a, &id, p, &assign[(size_t)p * (size_t)rf], rf);
    for (int32_t k = 0; k < t->configs_count; k++) {
        gr_config_record cr;
        gr_config_record_init(&cr);
        cr.resource_type = GR_METADATA_RESOURCE_TOPIC;
        cr.resource_name = name;
        cr.name = t->configs[k].name;
        cr.value = t->configs[k].value;
        gr_mdentry_add_latest(b, GR_METADATA_RECORD_CONFIG, &cr);
    }
    return b->err ? GR_ERR_NOMEM : GR_OK;
}

int gr_control_create_topics(gr_control *c, const gr_create_topics_request *req, int16_t version,
                             gr_arena *a, gr_create_topics_response *resp, gr_writer *entry)
{
    int32_t n = req->topics_count > 0 ? req->topics_count : 0;
    resp->topics = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *resp->topics);
    gr_str *done = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *done);
    TRYM(resp->topics && done);
    resp->topics_count = n;
    int32_t ndone = 0;
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    bool validate_only = version >= 1 && req->validate_only;
    for (int32_t i = 0; i < n; i++) {
        const gr_create_topics_request_creatable_topic *t = &req->topics[i];
        gr_create_topics_response_creatable_topic_result *res = &resp->topics[i];
        gr_create_topics_response_creatable_topic_result_init(res);
        bool dup = false;
        for (int32_t k = 0; k < n; k++)
            if (k != i && str_eq(req->topics[k].name, t->name))
                dup = true;
        if (dup) {
            res->name = t->name;
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, "Duplicate topic name.");
            continue;
        }
        if (create_one(c, t, validate_only, version, done, ndone, a, &b, res))
            return GR_ERR_NOMEM;
        if (res->error_code == GR_NONE)
            done[ndone++] = t->name;
    }
    return gr_mdentry_finish(&b) ? GR_ERR_NOMEM : GR_OK;
}

int gr_control_create_topic_default(gr_control *c, gr_str name, gr_arena *a,
                                    gr_create_topics_response_creatable_topic_result *res,
                                    gr_writer *entry)
{
    gr_create_topics_request_creatable_topic t;
    gr_create_topics_request_creatable_topic_init(&t);
    t.name = name;
    t.num_partitions = -1;
    t.replication_factor = -1;
    t.assignments_count = 0;
    t.configs_count = 0;
    gr_create_topics_response_creatable_topic_result_init(res);
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    if (create_one(c, &t, false, 7, NULL, 0, a, &b, res))
        return GR_ERR_NOMEM;
    return gr_mdentry_finish(&b) ? GR_ERR_NOMEM : GR_OK;
}

/* ---- DeleteTopics ---- */

int gr_control_delete_topics(gr_control *c, const gr_delete_topics_request *req, int16_t version,
                             gr_arena *a, gr_delete_topics_response *resp, gr_writer *entry)
{
    bool by_state = version >= 6;
    int32_t n = by_state ? req->topics_count : req->topic_names_count;
    if (n < 0)
        n = 0;
    resp->responses = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *resp->responses);
    gr_uuid *removed = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *removed);
    TRYM(resp->responses && removed);
    resp->responses_count = n;
    int32_t nremoved = 0;
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    for (int32_t i = 0; i < n; i++) {
        gr_delete_topics_response_deletable_topic_result *res = &resp->responses[i];
        gr_delete_topics_response_deletable_topic_result_init(res);
        gr_str name = by_state ? req->topics[i].name : req->topic_names[i];
        gr_uuid id = by_state ? req->topics[i].topic_id : (gr_uuid){{0}};
        bool has_id = !gr_uuid_is_zero(&id);
        res->name = name;
        res->topic_id = id;
        res->error_message = GR_STR_NULL;
        if (has_id && name.len >= 0) {
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, "You may not specify both topic name and topic id.");
            continue;
        }
        if (!has_id && name.len < 0) {
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, "Neither topic name nor id were specified.");
            continue;
        }
        bool dup = false;
        for (int32_t k = 0; k < n && !dup; k++) {
            if (k == i)
                continue;
            if (has_id)
                dup = by_state && !memcmp(req->topics[k].topic_id.b, id.b, 16);
            else
                dup = str_eq(by_state ? req->topics[k].name : req->topic_names[k], name);
        }
        if (dup) {
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, has_id ? "Duplicate topic id." : "Duplicate topic name.");
            continue;
        }
        const gr_metadata_topic *t =
            has_id ? gr_metadata_topic_by_id(c->img, &id) : gr_metadata_topic_by_name(c->img, name);
        if (!t) {
            res->error_code = has_id ? GR_UNKNOWN_TOPIC_ID : GR_UNKNOWN_TOPIC_OR_PARTITION;
            res->error_message = astr(a, has_id ? "This server does not host this topic ID."
                                                : "This server does not host this topic-partition.");
            continue;
        }
        res->error_code = GR_NONE;
        res->name = astr(a, t->name.ptr); /* the image's copy dies when the entry is applied */
        TRYM(res->name.ptr);
        res->topic_id = t->id;
        bool already = false;
        for (int32_t k = 0; k < nremoved; k++)
            already |= !memcmp(removed[k].b, t->id.b, 16);
        if (already) /* named once by name and once by id */
            continue;
        removed[nremoved++] = t->id;
        gr_remove_topic_record r;
        gr_remove_topic_record_init(&r);
        r.topic_id = t->id;
        gr_mdentry_add_latest(&b, GR_METADATA_RECORD_REMOVE_TOPIC, &r);
    }
    return gr_mdentry_finish(&b) ? GR_ERR_NOMEM : GR_OK;
}

/* ---- CreatePartitions ---- */

static int create_partitions_one(gr_control *c, const gr_create_partitions_request_create_partitions_topic *t,
                                 bool validate_only, gr_arena *a, gr_mdentry_builder *b,
                                 gr_create_partitions_response_create_partitions_topic_result *res)
{
    const gr_metadata_topic *topic = gr_metadata_topic_by_name(c->img, t->name);
    if (!topic) {
        res->error_code = GR_UNKNOWN_TOPIC_OR_PARTITION;
        res->error_message = astr(a, "This server does not host this topic-partition.");
        return GR_OK;
    }
    int32_t cur = topic->partition_count;
    if (t->count == cur) {
        res->error_code = GR_INVALID_PARTITIONS;
        res->error_message = afmt(a, "Topic already has %d partition(s).", cur);
        return GR_OK;
    }
    if (t->count < cur) {
        res->error_code = GR_INVALID_PARTITIONS;
        res->error_message = afmt(a, "The topic %.*s currently has %d partition(s); %d would not be an increase.",
                                  (int)t->name.len, t->name.ptr, cur, t->count);
        return GR_OK;
    }
    int32_t add = t->count - cur;
    if (t->count > MAX_PARTITIONS_PER_TOPIC) {
        res->error_code = GR_INVALID_PARTITIONS;
        res->error_message = afmt(a, "Number of partitions %d is larger than the limit of %d.", t->count,
                                  MAX_PARTITIONS_PER_TOPIC);
        return GR_OK;
    }
    int32_t rf = cur > 0 ? topic->partitions[0].replicas.count : 1;
    int32_t *assign = gr_arena_calloc(a, (size_t)add * (size_t)(rf > 0 ? rf : 1), sizeof *assign);
    TRYM(assign);
    if (t->assignments_count >= 0 && t->assignments) {
        if (t->assignments_count != add) {
            res->error_code = GR_INVALID_REPLICA_ASSIGNMENT;
            res->error_message = afmt(a,
                                      "Attempted to add %d additional partition(s), but only %d "
                                      "assignment(s) were specified.",
                                      add, t->assignments_count);
            return GR_OK;
        }
        for (int32_t i = 0; i < add; i++) {
            const gr_create_partitions_request_create_partitions_assignment *as = &t->assignments[i];
            int16_t e = check_manual(c, as->broker_ids, as->broker_ids_count, rf, cur + i, a,
                                     &res->error_message);
            if (e) {
                res->error_code = e;
                return GR_OK;
            }
            memcpy(&assign[(size_t)i * (size_t)rf], as->broker_ids, (size_t)rf * sizeof *assign);
        }
    } else {
        broker_list bl;
        if (usable_brokers(c, a, &bl))
            return GR_ERR_NOMEM;
        if (rf > bl.n) {
            res->error_code = GR_INVALID_REPLICATION_FACTOR;
            res->error_message = rf_message(a, rf, bl.n);
            return GR_OK;
        }
        int32_t *scratch = gr_arena_calloc(a, (size_t)rf, sizeof *scratch);
        TRYM(scratch);
        if (!validate_only)
            place(c, &bl, cur, add, rf, assign, scratch);
    }
    if (validate_only)
        return GR_OK;
    for (int32_t i = 0; i < add; i++)
        add_partition(c, b, a, &topic->id, cur + i, &assign[(size_t)i * (size_t)rf], rf);
    return b->err ? GR_ERR_NOMEM : GR_OK;
}

int gr_control_create_partitions(gr_control *c, const gr_create_partitions_request *req,
                                 int16_t version, gr_arena *a,
                                 gr_create_partitions_response *resp, gr_writer *entry)
{
    (void)version;
    int32_t n = req->topics_count > 0 ? req->topics_count : 0;
    resp->results = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *resp->results);
    TRYM(resp->results);
    resp->results_count = n;
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    for (int32_t i = 0; i < n; i++) {
        const gr_create_partitions_request_create_partitions_topic *t = &req->topics[i];
        gr_create_partitions_response_create_partitions_topic_result *res = &resp->results[i];
        gr_create_partitions_response_create_partitions_topic_result_init(res);
        res->name = t->name;
        res->error_code = GR_NONE;
        res->error_message = GR_STR_NULL;
        bool dup = false;
        for (int32_t k = 0; k < n; k++)
            dup |= k != i && str_eq(req->topics[k].name, t->name);
        if (dup) {
            res->error_code = GR_INVALID_REQUEST;
            res->error_message = astr(a, "Duplicate topic name.");
            continue;
        }
        if (create_partitions_one(c, t, req->validate_only, a, &b, res))
            return GR_ERR_NOMEM;
    }
    return gr_mdentry_finish(&b) ? GR_ERR_NOMEM : GR_OK;
}

/* ---- configs ---- */

/* Broker keys that may be set dynamically, besides the topic keys' broker
 * synonyms (which Kafka also allows dynamically): a modest set of thread
 * pools and connection limits. */
static const gr_config_def broker_extra_defs[] = {
    {"background.threads", GR_CFG_INT, "10", 1, INT32_MAX, "background task threads", NULL},
    {"log.cleaner.threads", GR_CFG_INT, "1", 0, INT32_MAX, "log cleaner threads", NULL},
    {"max.connections", GR_CFG_INT, "2147483647", 0, INT32_MAX, "connections per broker", NULL},
    {"max.connections.per.ip", GR_CFG_INT, "2147483647", 0, INT32_MAX, "connections per client address", NULL},
    {"num.io.threads", GR_CFG_INT, "8", 1, INT32_MAX, "request handler threads", NULL},
    {"num.network.threads", GR_CFG_INT, "3", 1, INT32_MAX, "network threads", NULL},
    {"num.recovery.threads.per.data.dir", GR_CFG_INT, "2", 1, INT32_MAX, "log recovery threads per directory", NULL},
    {"num.replica.fetchers", GR_CFG_INT, "1", 1, INT32_MAX, "follower fetcher threads", NULL},
};
#define N_BROKER_EXTRA (sizeof broker_extra_defs / sizeof broker_extra_defs[0])

static bool unit_synonym(const char *k)
{
    size_t n = strlen(k);
    return (n > 6 && !strcmp(k + n - 6, ".hours")) || (n > 8 && !strcmp(k + n - 8, ".minutes")) ||
           !strcmp(k, "log.flush.scheduler.interval.ms");
}

/* The definition of a dynamic broker key, named after the broker key (in *tmp for synonyms). */
static const gr_config_def *broker_key_def(const char *key, gr_config_def *tmp)
{
    for (size_t i = 0; i < N_BROKER_EXTRA; i++)
        if (!strcmp(broker_extra_defs[i].name, key))
            return &broker_extra_defs[i];
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++) {
        const gr_topic_config_synonym *s = &gr_topic_config_synonyms[i];
        if (strcmp(s->broker_key, key) != 0 || unit_synonym(key))
            continue;
        *tmp = *gr_topic_config_find(s->topic_key);
        tmp->name = s->broker_key;
        return tmp;
    }
    return NULL;
}

/* Pending values of one resource while an alteration is computed. */
typedef struct {
    const char *key;
    const char *value; /* NULL: not set */
    bool changed;
} pending;

typedef struct {
    pending *v;
    int32_t n, cap;
} pending_set;

static pending *pending_get(pending_set *ps, gr_arena *a, const char *key)
{
    for (int32_t i = 0; i < ps->n; i++)
        if (!strcmp(ps->v[i].key, key))
            return &ps->v[i];
    if (ps->n == ps->cap) {
        int32_t cap = ps->cap ? ps->cap * 2 : 16;
        pending *nv = gr_arena_calloc(a, (size_t)cap, sizeof *nv);
        if (!nv)
            return NULL;
        if (ps->n)
            memcpy(nv, ps->v, (size_t)ps->n * sizeof *nv);
        ps->v = nv;
        ps->cap = cap;
    }
    pending *p = &ps->v[ps->n++];
    p->key = gr_arena_strdup(a, key, strlen(key));
    p->value = NULL;
    p->changed = false;
    return p->key ? p : NULL;
}

static int pending_load(const gr_control *c, int8_t type, gr_str name, gr_arena *a, pending_set *ps)
{
    memset(ps, 0, sizeof *ps);
    const gr_metadata_config_resource *r = gr_metadata_config_resource_get(c->img, type, name);
    for (int32_t i = 0; r && i < r->count; i++) {
        pending *p = pending_get(ps, a, r->entries[i].key.ptr);
        TRYM(p);
        p->value = gr_arena_strdup(a, r->entries[i].value.ptr, (size_t)r->entries[i].value.len);
        TRYM(p->value);
    }
    return GR_OK;
}

/* Checks a resource of an alter request: its type, its name, its existence. */
static int16_t check_resource(const gr_control *c, int8_t type, gr_str name, gr_arena *a, gr_str *msg)
{
    if (type == GR_METADATA_RESOURCE_TOPIC) {
        if (!gr_metadata_topic_by_name(c->img, name)) {
            *msg = afmt(a, "The topic '%.*s' does not exist.", (int)(name.len > 0 ? name.len : 0),
                        name.ptr ? name.ptr : "");
            return GR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        return GR_NONE;
    }
    if (type == GR_METADATA_RESOURCE_BROKER) {
        bool ok = name.len >= 0;
        for (int32_t i = 0; ok && i < name.len; i++)
            ok = name.ptr[i] >= '0' && name.ptr[i] <= '9';
        if (!ok || name.len > 9) {
            *msg = afmt(a, "Invalid broker name %.*s", (int)(name.len > 0 ? name.len : 0),
                        name.ptr ? name.ptr : "");
            return GR_INVALID_REQUEST;
        }
        return GR_NONE;
    }
    *msg = afmt(a, "Unsupported resource type %d", type);
    return GR_INVALID_REQUEST;
}

/* Validates key=value (value NULL: a deletion) for a resource type. */
static int16_t check_key(int8_t type, const char *key, const char *value, bool is_delete, gr_arena *a,
                         gr_str *msg)
{
    char err[1024];
    gr_config_def tmp;
    const gr_config_def *def;
    if (type == GR_METADATA_RESOURCE_TOPIC) {
        def = gr_topic_config_find(key);
        if (!def) {
            *msg = afmt(a, "Unknown topic config name: %s", key);
            return GR_INVALID_CONFIG;
        }
    } else {
        def = broker_key_def(key, &tmp);
        if (!def) {
            *msg = afmt(a, "Cannot update these configs dynamically: Set(%s)", key);
            return GR_INVALID_CONFIG;
        }
    }
    if (is_delete)
        return GR_NONE;
    if (!value) {
        *msg = afmt(a, "Null value not supported for %s configs: %s",
                    type == GR_METADATA_RESOURCE_TOPIC ? "topic" : "broker", key);
        return GR_INVALID_CONFIG;
    }
    if (gr_config_def_check(def, value, err, sizeof err)) {
        *msg = astr(a, err);
        return GR_INVALID_CONFIG;
    }
    return GR_NONE;
}

static gr_config_type key_type(int8_t type, const char *key)
{
    gr_config_def tmp;
    const gr_config_def *def =
        type == GR_METADATA_RESOURCE_TOPIC ? gr_topic_config_find(key) : broker_key_def(key, &tmp);
    return def ? def->type : GR_CFG_STRING;
}

/* Default list value for APPEND / SUBTRACT when the key is not set. */
static void list_default(const gr_control *c, int8_t type, const char *key, char *buf, size_t buflen)
{
    buf[0] = '\0';
    if (type == GR_METADATA_RESOURCE_TOPIC) {
        const gr_config_def *def = gr_topic_config_find(key);
        int8_t src;
        const char *syn;
        if (def)
            topic_default(c, def, buf, buflen, &src, &syn);
    } else {
        gr_config_def tmp;
        const gr_config_def *def = broker_key_def(key, &tmp);
        if (def && def->dflt)
            snprintf(buf, buflen, "%s", def->dflt);
    }
}

/* items of a comma list, trimmed; returns count; writes pointers into buf copy. */
static int32_t split_list(char *s, char **items, int32_t max)
{
    int32_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (*tok)
            items[n++] = tok;
    }
    return n;
}

#define MAX_LIST_ITEMS 256

static const char *list_edit(gr_arena *a, const char *cur, const char *arg, bool append)
{
    char cb[4096], ab[4096], out[8192];
    snprintf(cb, sizeof cb, "%s", cur ? cur : "");
    snprintf(ab, sizeof ab, "%s", arg ? arg : "");
    char *ci[MAX_LIST_ITEMS], *ai[MAX_LIST_ITEMS];
    int32_t nc = split_list(cb, ci, MAX_LIST_ITEMS), na = split_list(ab, ai, MAX_LIST_ITEMS);
    size_t used = 0;
    out[0] = '\0';
#define PUT(s)                                                                         \
    do {                                                                               \
        int k_ = snprintf(out + used, sizeof out - used, "%s%s", used ? "," : "", (s)); \
        if (k_ > 0 && (size_t)k_ < sizeof out - used)                                  \
            used += (size_t)k_;                                                        \
    } while (0)
    for (int32_t i = 0; i < nc; i++) {
        bool drop = false;
        for (int32_t j = 0; j < na && !append; j++)
            drop |= !strcmp(ci[i], ai[j]);
        if (!drop)
            PUT(ci[i]);
    }
    for (int32_t j = 0; j < na && append; j++) {
        bool have = false;
        for (int32_t i = 0; i < nc; i++)
            have |= !strcmp(ci[i], ai[j]);
        for (int32_t k = 0; k < j; k++)
            have |= !strcmp(ai[k], ai[j]);
        if (!have)
            PUT(ai[j]);
    }
#undef PUT
    return gr_arena_strdup(a, out, strlen(out));
}

/* Adds a ConfigRecord for every changed pending value. */
static void emit_pending(gr_mdentry_builder *b, int8_t type, gr_str name, const pending_set *ps)
{
    for (int32_t i = 0; i < ps->n; i++) {
        if (!ps->v[i].changed)
            continue;
        gr_config_record r;
        gr_config_record_init(&r);
        r.resource_type = type;
        r.resource_name = name;
        r.name = str_of(ps->v[i].key);
        r.value = ps->v[i].value ? str_of(ps->v[i].value) : GR_STR_NULL;
        gr_mdentry_add_latest(b, GR_METADATA_RECORD_CONFIG, &r);
    }
}

/* Whether resource i of an alter request is named again elsewhere in it
 * (the request types differ, their resource fields do not). */
#define NAMED_TWICE(twice, req, i)                                                                 \
    do {                                                                                           \
        (twice) = false;                                                                           \
        for (int32_t k_ = 0; k_ < (req)->resources_count; k_++)                                    \
            (twice) |= k_ != (i) &&                                                                \
                       (req)->resources[k_].resource_type == (req)->resources[i].resource_type && \
                       str_eq((req)->resources[k_].resource_name, (req)->resources[i].resource_name); \
    } while (0)

/* The checks every altered resource passes first: named once in the
 * request, and known. GR_NONE, or the error with its message in *msg. */
static int16_t precheck_resource(const gr_control *c, int8_t type, gr_str name, bool twice,
                                 gr_arena *a, gr_str *msg)
{
    if (twice) {
        *msg = astr(a, "Duplicate resource.");
        return GR_INVALID_REQUEST;
    }
    return check_resource(c, type, name, a, msg);
}

int gr_control_incremental_alter_configs(gr_control *c,
                                         const gr_incremental_alter_configs_request *req,
                                         int16_t version, gr_arena *a,
                                         gr_incremental_alter_configs_response *resp,
                                         gr_writer *entry)
{
    (void)version;
    int32_t n = req->resources_count > 0 ? req->resources_count : 0;
    resp->responses = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *resp->responses);
    TRYM(resp->responses);
    resp->responses_count = n;
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    for (int32_t i = 0; i < n; i++) {
        const gr_incremental_alter_configs_request_alter_configs_resource *r = &req->resources[i];
        gr_incremental_alter_configs_response_alter_configs_resource_response *res = &resp->responses[i];
        gr_incremental_alter_configs_response_alter_configs_resource_response_init(res);
        res->resource_type = r->resource_type;
        res->resource_name = r->resource_name;
        res->error_code = GR_NONE;
        res->error_message = GR_STR_NULL;
        bool twice;
        NAMED_TWICE(twice, req, i);
        int16_t e = precheck_resource(c, r->resource_type, r->resource_name, twice, a,
                                      &res->error_message);
        if (e) {
            res->error_code = e;
            continue;
        }
        pending_set ps;
        if (pending_load(c, r->resource_type, r->resource_name, a, &ps))
            return GR_ERR_NOMEM;
        for (int32_t k = 0; k < r->configs_count && !e; k++) {
            const gr_incremental_alter_configs_request_alterable_config *cf = &r->configs[k];
            char *key = cstr(a, cf->name);
            char *val = cstr(a, cf->value);
            TRYM(key);
            int8_t op = cf->config_operation;
            if (op < GR_CONFIG_OP_SET || op > GR_CONFIG_OP_SUBTRACT) {
                e = GR_INVALID_REQUEST;
                res->error_message = afmt(a, "Unknown operation type %d", op);
                break;
            }
            if ((e = check_key(r->resource_type, key, NULL, true, a, &res->error_message)))
                break;
            pending *p = pending_get(&ps, a, key);
            TRYM(p);
            const char *nv = NULL;
            if (op == GR_CONFIG_OP_SET) {
                nv = val;
            } else if (op == GR_CONFIG_OP_DELETE) {
                nv = NULL;
            } else {
                if (key_type(r->resource_type, key) != GR_CFG_LIST) {
                    e = GR_INVALID_CONFIG;
                    res->error_message = afmt(a, "Can't %s to key %s because its type is not LIST.",
                                              op == GR_CONFIG_OP_APPEND ? "APPEND" : "SUBTRACT", key);
                    break;
                }
                char dflt[1024];
                const char *cur = p->value;
                if (!cur) {
                    list_default(c, r->resource_type, key, dflt, sizeof dflt);
                    cur = dflt;
                }
                nv = list_edit(a, cur, val, op == GR_CONFIG_OP_APPEND);
                TRYM(nv);
            }
            if (op != GR_CONFIG_OP_DELETE &&
                (e = check_key(r->resource_type, key, nv, false, a, &res->error_message)))
                break;
            p->value = nv;
            p->changed = true;
        }
        if (e) {
            res->error_code = e;
            continue;
        }
        if (!req->validate_only)
            emit_pending(&b, r->resource_type, r->resource_name, &ps);
    }
    return gr_mdentry_finish(&b) ? GR_ERR_NOMEM : GR_OK;
}

int gr_control_alter_configs(gr_control *c, const gr_alter_configs_request *req, int16_t version,
                             gr_arena *a, gr_alter_configs_response *resp, gr_writer *entry)
{
    (void)version;
    int32_t n = req->resources_count > 0 ? req->resources_count : 0;
    resp->responses = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *resp->responses);
    TRYM(resp->responses);
    resp->responses_count = n;
    gr_mdentry_builder b;
    gr_mdentry_builder_init(&b, entry);
    for (int32_t i = 0; i < n; i++) {
        const gr_alter_configs_request_alter_configs_resource *r = &req->resources[i];
        gr_alter_configs_response_alter_configs_resource_response *res = &resp->responses[i];
        gr_alter_configs_response_alter_configs_resource_response_init(res);
        res->resource_type = r->resource_type;
        res->resource_name = r->resource_name;
        res->error_code = GR_NONE;
        res->error_message = GR_STR_NULL;
        bool twice;
        NAMED_TWICE(twice, req, i);
        int16_t e = precheck_resource(c, r->resource_type, r->resource_name, twice, a,
                                      &res->error_message);
        if (e) {
            res->error_code = e;
            continue;
        }
        pending_set ps;
        if (pending_load(c, r->resource_type, r->resource_name, a, &ps))
            return GR_ERR_NOMEM;
        /* Replace: everything set goes unless the request sets it again. */
        for (int32_t k = 0; k < ps.n; k++) {
            ps.v[k].value = NULL;
            ps.v[k].changed = true;
        }
        for (int32_t k = 0; k < r->configs_count && !e; k++) {
            char *key = cstr(a, r->configs[k].name);
            char *val = cstr(a, r->configs[k].value);
            TRYM(key);
            if ((e = check_key(r->resource_type, key, val, false, a, &res->error_message)))
                break;
            pending *p = pending_get(&ps, a, key);
            TRYM(p);
            p->value = val;
            p->changed = true;
        }
        if (e) {
            res->error_code = e;
            continue;
        }
        if (!req->validate_only)
            emit_pending(&b, r->resource_type, r->resource_name, &ps);
    }
    return gr_mdentry_finish(&b) ? GR_ERR_NOMEM : GR_OK;
}

/* DescribeConfigs config_type (Kafka's ConfigType ids). */
static int8_t describe_type(gr_config_type t)
{
    switch (t) {
    case GR_CFG_BOOL: return 1;
    case GR_CFG_STRING: return 2;
    case GR_CFG_INT: return 3;
    case GR_CFG_LONG: return 5;
    case GR_CFG_DOUBLE: return 6;
    case GR_CFG_LIST: return 7;
    case GR_CFG_PASSWORD: return 9;
    }
    return 0;
}

static bool key_wanted(const gr_describe_configs_request_describe_configs_resource *r, const char *key)
{
    if (r->configuration_keys_count < 0 || !r->configuration_keys)
        return true;
    for (int32_t i = 0; i < r->configuration_keys_count; i++)
        if (gr_str_eq(r->configuration_keys[i], key))
            return true;
    return false;
}

typedef struct {
    const char *name;
    const char *value;
    int8_t source;
} syn_item;

static int set_described(gr_arena *a, gr_describe_configs_response_describe_configs_resource_result *o,
                         const gr_config_def *def, const char *name, const char *value, int8_t source,
                         const syn_item *syn, int32_t nsyn, const gr_describe_configs_request *req)
{
    gr_describe_configs_response_describe_configs_resource_result_init(o);
    o->name = str_of(name);
    o->value = astr(a, value);
    TRYM(o->value.ptr);
    o->read_only = false;
    o->is_default = source == GR_CONFIG_SOURCE_DEFAULT;
    o->config_source = source;
    o->is_sensitive = def->type == GR_CFG_PASSWORD;
    if (o->is_sensitive)
        o->value = GR_STR_NULL;
    o->config_type = describe_type(def->type);
    o->documentation = req->include_documentation && def->doc ? str_of(def->doc) : GR_STR_NULL;
    o->synonyms = NULL;
    o->synonyms_count = 0;
    if (req->include_synonyms && nsyn > 0) {
        o->synonyms = gr_arena_calloc(a, (size_t)nsyn, sizeof *o->synonyms);
        TRYM(o->synonyms);
        o->synonyms_count = nsyn;
        for (int32_t i = 0; i < nsyn; i++) {
            gr_describe_configs_response_describe_configs_synonym_init(&o->synonyms[i]);
            o->synonyms[i].name = str_of(syn[i].name);
            o->synonyms[i].value = astr(a, syn[i].value);
            o->synonyms[i].source = syn[i].source;
        }
    }
    return GR_OK;
}

/* A topic key's synonyms, highest precedence first, and its effective value. */
static int32_t topic_synonyms(const gr_control *c, gr_str topic, const gr_config_def *def, gr_arena *a,
                              syn_item *out, int32_t max)
{
    int32_t n = 0;
    gr_str v = gr_metadata_config(c->img, GR_METADATA_RESOURCE_TOPIC, topic, def->name);
    if (v.len >= 0 && n < max)
        out[n++] = (syn_item){def->name, gr_arena_strdup(a, v.ptr, (size_t)v.len), GR_CONFIG_SOURCE_TOPIC};
    const char *first_broker_key = NULL;
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++) {
        const gr_topic_config_synonym *s = &gr_topic_config_synonyms[i];
        if (strcmp(s->topic_key, def->name) != 0)
            continue;
        if (!first_broker_key)
            first_broker_key = s->broker_key;
        gr_str dv = gr_metadata_config(c->img, GR_METADATA_RESOURCE_BROKER, str_of(""), s->broker_key);
        if (dv.len >= 0 && n < max)
            out[n++] = (syn_item){s->broker_key, gr_arena_strdup(a, dv.ptr, (size_t)dv.len),
                                  GR_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER};
    }
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++) {
        const gr_topic_config_synonym *s = &gr_topic_config_synonyms[i];
        if (strcmp(s->topic_key, def->name) != 0)
            continue;
        const char *sv = static_value(c, s->broker_key);
        if (sv && n < max)
            out[n++] = (syn_item){s->broker_key, sv, GR_CONFIG_SOURCE_STATIC_BROKER};
    }
    if (n < max)
        out[n++] = (syn_item){first_broker_key ? first_broker_key : def->name, def->dflt ? def->dflt : "",
                              GR_CONFIG_SOURCE_DEFAULT};
    return n;
}

static int describe_topic(gr_control *c, const gr_describe_configs_request *req,
                          const gr_describe_configs_request_describe_configs_resource *r, gr_arena *a,
                          gr_describe_configs_response_describe_configs_result *res)
{
    res->configs = gr_arena_calloc(a, gr_topic_config_ndefs, sizeof *res->configs);
    TRYM(res->configs);
    int32_t n = 0;
    for (size_t i = 0; i < gr_topic_config_ndefs; i++) {
        const gr_config_def *def = &gr_topic_config_defs[i];
        if (!key_wanted(r, def->name))
            continue;
        char buf[1024];
        int8_t src;
        gr_control_topic_config(c, r->resource_name, def->name, buf, sizeof buf, &src);
        syn_item syn[8];
        int32_t nsyn = topic_synonyms(c, r->resource_name, def, a, syn, 8);
        if (set_described(a, &res->configs[n++], def, def->name, buf, src, syn, nsyn, req))
            return GR_ERR_NOMEM;
    }
    res->configs_count = n;
    return GR_OK;
}

static int describe_broker(gr_control *c, const gr_describe_configs_request *req,
                           const gr_describe_configs_request_describe_configs_resource *r, gr_arena *a,
                           gr_describe_configs_response_describe_configs_result *res)
{
    size_t max = N_BROKER_EXTRA + gr_topic_config_nsynonyms;
    res->configs = gr_arena_calloc(a, max, sizeof *res->configs);
    TRYM(res->configs);
    int32_t n = 0;
    bool cluster = r->resource_name.len == 0;
    for (size_t i = 0; i < max; i++) {
        const char *key = i < N_BROKER_EXTRA ? broker_extra_defs[i].name
                                             : gr_topic_config_synonyms[i - N_BROKER_EXTRA].broker_key;
        gr_config_def tmp;
        const gr_config_def *def = broker_key_def(key, &tmp);
        if (!def || !key_wanted(r, key))
            continue;
        bool seen = false; /* a broker key can be the synonym of one topic key only once */
        for (int32_t k = 0; k < n; k++)
            seen |= gr_str_eq(res->configs[k].name, key);
        if (seen)
            continue;
        syn_item syn[4];
        int32_t nsyn = 0;
        gr_str v = gr_metadata_config(c->img, GR_METADATA_RESOURCE_BROKER, r->resource_name, key);
        if (v.len >= 0 && !cluster)
            syn[nsyn++] = (syn_item){key, v.ptr, GR_CONFIG_SOURCE_DYNAMIC_BROKER};
        gr_str dv = gr_metadata_config(c->img, GR_METADATA_RESOURCE_BROKER, str_of(""), key);
        if (dv.len >= 0)
            syn[nsyn++] = (syn_item){key, dv.ptr, GR_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER};
        if (cluster && nsyn == 0)
            continue; /* the cluster-wide resource lists only what is set on it */
        const char *sv = static_value(c, key);
        if (sv)
            syn[nsyn++] = (syn_item){key, sv, GR_CONFIG_SOURCE_STATIC_BROKER};
        syn[nsyn++] = (syn_item){key, def->dflt ? def->dflt : "", GR_CONFIG_SOURCE_DEFAULT};
        gr_config_def named = *def;
        named.name = key;
        if (set_described(a, &res->configs[n], &named, key, syn[0].value, syn[0].source, syn, nsyn, req))
            return GR_ERR_NOMEM;
        n++;
    }
    res->configs_count = n;
    return GR_OK;
}

int gr_control_describe_configs(gr_control *c, const gr_describe_configs_request *req,
                                int16_t version, gr_arena *a, gr_describe_configs_response *resp)
{
    (void)version;
    int32_t n = req->resources_count > 0 ? req->resources_count : 0;
    resp->results = gr_arena_calloc(a, (size_t)(n ? n : 1), sizeof *resp->results);
    TRYM(resp->results);
    resp->results_count = n;
    for (int32_t i = 0; i < n; i++) {
        const gr_describe_configs_request_describe_configs_resource *r = &req->resources[i];
        gr_describe_configs_response_describe_configs_result *res = &resp->results[i];
        gr_describe_configs_response_describe_configs_result_init(res);
        res->resource_type = r->resource_type;
        res->resource_name = r->resource_name;
        res->error_code = GR_NONE;
        res->error_message = GR_STR_NULL;
        res->configs = NULL;
        res->configs_count = 0;
        int16_t e = check_resource(c, r->resource_type, r->resource_name, a, &res->error_message);
        if (e) {
            res->error_code = e;
            continue;
        }
        int err = r->resource_type == GR_METADATA_RESOURCE_TOPIC ? describe_topic(c, req, r, a, res)
                                                                 : describe_broker(c, req, r, a, res);
        if (err)
            return GR_ERR_NOMEM;
    }
    return GR_OK;
}
