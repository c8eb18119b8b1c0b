/*
 * metadata.c - the metadata image (see metadata.h).
 *
 * Every apply function has the same shape: look up and validate everything
 * the record touches, then build every new piece of memory it needs (copies
 * of strings and arrays, room in arrays and hash tables), and only then
 * commit with steps that cannot fail, freeing what was replaced. An error
 * at any point before the commit frees what was built and leaves the image
 * untouched; spare capacity reserved along the way is harmless.
 *
 * Replay rules, as Kafka applies the records:
 *  - PartitionChangeRecord changes only the fields it carries: a null
 *    array means "unchanged", Leader -2 means "unchanged" (-1 is "no
 *    leader"), LeaderRecoveryState -1 means "unchanged". A record that
 *    carries a leader (even the same one) bumps the leader epoch; every
 *    record bumps the partition epoch.
 *  - PartitionRecord creates or replaces a partition of an existing topic.
 *  - RemoveTopicRecord removes the topic, its partitions and its topic
 *    configs.
 *  - RegisterBrokerRecord replaces any registration with the same id; the
 *    Fenced field (default true) says whether it starts fenced.
 *  - Fence/Unfence/Unregister/BrokerRegistrationChange name a broker epoch
 *    that must be the registered one.
 *  - ConfigRecord with a null value deletes the key; a resource left with
 *    no keys is gone.
 *  - FeatureLevelRecord with level 0 removes the feature.
 *  - ProducerIdsRecord must move the next producer id forward.
 */
#include "common/metadata.h"

#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

static int str_dup(gr_str in, gr_str *out)
{
    if (in.len < 0) {
        *out = GR_STR_NULL;
        return GR_METADATA_OK;
    }
    if (in.len > 0 && !in.ptr)
        return GR_METADATA_ERR_INVALID;
    char *p = malloc((size_t)in.len + 1);
    if (!p)
        return GR_METADATA_ERR_NOMEM;
    if (in.len > 0)
        memcpy(p, in.ptr, (size_t)in.len);
    p[in.len] = '\0';
    *out = (gr_str){p, in.len};
    return GR_METADATA_OK;
}

static void str_free(gr_str *s)
{
    free((void *)s->ptr);
    *s = GR_STR_NULL;
}

static bool str_is_null(gr_str s) { return s.len < 0; }

static bool str_same(gr_str a, gr_str b)
{
    bool an = str_is_null(a), bn = str_is_null(b);
    if (an || bn)
        return an == bn;
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static int str_cmp(gr_str a, gr_str b)
{
    size_t n = (size_t)(a.len < b.len ? a.len : b.len);
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* A null array (count < 0) and an empty one both become the empty list. */
static int ids_dup(const int32_t *v, int32_t n, gr_metadata_ids *out)
{
    out->ids = NULL;
    out->count = 0;
    if (n <= 0)
        return GR_METADATA_OK;
    if (!v)
        return GR_METADATA_ERR_INVALID;
    out->ids = malloc((size_t)n * sizeof *v);
    if (!out->ids)
        return GR_METADATA_ERR_NOMEM;
    memcpy(out->ids, v, (size_t)n * sizeof *v);
    out->count = n;
    return GR_METADATA_OK;
}

static void ids_free(gr_metadata_ids *l)
{
    free(l->ids);
    l->ids = NULL;
    l->count = 0;
}

static bool ids_same(const gr_metadata_ids *a, const gr_metadata_ids *b)
{
    return a->count == b->count &&
           (a->count == 0 || memcmp(a->ids, b->ids, (size_t)a->count * sizeof *a->ids) == 0);
}

/* Grows *p (elements of size sz) so that it holds at least need; *cap is updated. */
static int grow(void **p, int32_t *cap, int32_t need, size_t sz)
{
    if (need <= *cap)
        return GR_METADATA_OK;
    int64_t c = *cap ? *cap : 4;
    while (c < need)
        c *= 2;
    if (c > INT32_MAX)
        c = INT32_MAX;
    void *np = realloc(*p, (size_t)c * sz);
    if (!np)
        return GR_METADATA_ERR_NOMEM;
    *p = np;
    *cap = (int32_t)c;
    return GR_METADATA_OK;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ULL

/* ---- an open-addressing hash table of pointers ----
 * Linear probing with backward-shift deletion (no tombstones), load at most
 * one half. The hash of each value is kept beside it so that growing never
 * needs to look at the values. */

typedef struct {
    uint64_t hash;
    void *val; /* NULL: empty */
} md_slot;

typedef struct {
    md_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
} md_map;

typedef bool (*md_eq_fn)(const void *val, const void *key);

static int map_reserve(md_map *m, size_t n)
{
    if (n <= m->cap / 2)
        return GR_METADATA_OK;
    size_t cap = m->cap ? m->cap : 16;
    while (cap / 2 < n)
        cap *= 2;
    md_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return GR_METADATA_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].val)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (s[j].val)
            j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return GR_METADATA_OK;
}

static md_slot *map_find(const md_map *m, uint64_t h, md_eq_fn eq, const void *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        if (!m->slots[j].val)
            return NULL;
        if (m->slots[j].hash == h && eq(m->slots[j].val, key))
            return &m->slots[j];
    }
}

/* The key must be absent and room reserved (map_reserve(count + 1)). */
static void map_insert(md_map *m, uint64_t h, void *val)
{
    size_t mask = m->cap - 1;
    size_t j = h & mask;
    while (m->slots[j].val)
        j = (j + 1) & mask;
    m->slots[j].hash = h;
    m->slots[j].val = val;
    m->count++;
}

static void map_remove(md_map *m, md_slot *s)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)(s - m->slots);
    m->slots[i].val = NULL;
    m->count--;
    for (size_t j = (i + 1) & mask; m->slots[j].val; j = (j + 1) & mask) {
        size_t k = m->slots[j].hash & mask;
        /* The entry at j may move back into the hole at i unless its home k
         * lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            m->slots[j].val = NULL;
            i = j;
        }
    }
}

static void map_free(md_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

/* ---- the image ---- */

struct gr_metadata_image {
    gr_metadata_topic **topics; /* dense; topic->slot_ is its index */
    size_t topic_count, topic_cap;
    md_map topics_by_name;
    md_map topics_by_id;

    gr_metadata_broker *brokers; /* sorted by id */
    int32_t broker_count, broker_cap;

    md_map configs; /* gr_metadata_config_resource *, by (type, name) */

    gr_metadata_feature *features; /* sorted by name */
    int32_t feature_count, feature_cap;

    int64_t next_producer_id;
    int64_t last_offset;
    int32_t last_epoch;
};

const char *gr_metadata_err_str(int err)
{
    switch (err) {
    case GR_METADATA_OK: return "ok";
    case GR_METADATA_ERR_DECODE: return "malformed metadata record";
    case GR_METADATA_ERR_VERSION: return "unknown metadata record type or version";
    case GR_METADATA_ERR_NOMEM: return "out of memory";
    case GR_METADATA_ERR_INVALID: return "metadata record does not apply to the image";
    default: return "unknown error";
    }
}

gr_metadata_image *gr_metadata_image_new(void)
{
    gr_metadata_image *img = calloc(1, sizeof *img);
    if (!img)
        return NULL;
    img->next_producer_id = -1;
    img->last_offset = -1;
    img->last_epoch = -1;
    return img;
}

static void partition_free(gr_metadata_partition *p)
{
    ids_free(&p->replicas);
    ids_free(&p->isr);
    ids_free(&p->removing);
    ids_free(&p->adding);
    ids_free(&p->elr);
    ids_free(&p->last_known_elr);
}

static void topic_free(gr_metadata_topic *t)
{
    if (!t)
        return;
    for (int32_t i = 0; i < t->partition_count; i++)
        partition_free(&t->partitions[i]);
    free(t->partitions);
    str_free(&t->name);
    free(t);
}

static void broker_clear(gr_metadata_broker *b)
{
    for (int32_t i = 0; i < b->endpoint_count; i++) {
        str_free(&b->endpoints[i].name);
        str_free(&b->endpoints[i].host);
    }
    free(b->endpoints);
    for (int32_t i = 0; i < b->feature_count; i++)
        str_free(&b->features[i].name);
    free(b->features);
    str_free(&b->rack);
    memset(b, 0, sizeof *b);
}

static void resource_free(gr_metadata_config_resource *res)
{
    if (!res)
        return;
    for (int32_t i = 0; i < res->count; i++) {
        str_free(&res->entries[i].key);
        str_free(&res->entries[i].value);
    }
    free(res->entries);
    str_free(&res->name);
    free(res);
}

void gr_metadata_image_free(gr_metadata_image *img)
{
    if (!img)
        return;
    for (size_t i = 0; i < img->topic_count; i++)
        topic_free(img->topics[i]);
    free(img->topics);
    map_free(&img->topics_by_name);
    map_free(&img->topics_by_id);
    for (int32_t i = 0; i < img->broker_count; i++)
        broker_clear(&img->brokers[i]);
    free(img->brokers);
    for (size_t i = 0; i < img->configs.cap; i++)
        resource_free(img->configs.slots[i].val);
    map_free(&img->configs);
    for (int32_t i = 0; i < img->feature_count; i++)
        str_free(&img->features[i].name);
    free(img->features);
    free(img);
}

/* ---- lookups ---- */

static uint64_t hash_name(gr_str name)
{
    return hash_mix(hash_bytes(HASH_SEED, name.ptr, name.len > 0 ? (size_t)name.len : 0));
}

static uint64_t hash_id(const gr_uuid *id) { return hash_mix(hash_bytes(HASH_SEED, id->b, 16)); }

static bool topic_name_eq(const void *val, const void *key)
{
    return str_same(((const gr_metadata_topic *)val)->name, *(const gr_str *)key);
}

static bool topic_id_eq(const void *val, const void *key)
{
    return memcmp(((const gr_metadata_topic *)val)->id.b, ((const gr_uuid *)key)->b, 16) == 0;
}

static gr_metadata_topic *find_topic_by_id(const gr_metadata_image *img, const gr_uuid *id)
{
    md_slot *s = map_find(&img->topics_by_id, hash_id(id), topic_id_eq, id);
    return s ? s->val : NULL;
}

static gr_metadata_topic *find_topic_by_name(const gr_metadata_image *img, gr_str name)
{
    if (str_is_null(name))
        return NULL;
    md_slot *s = map_find(&img->topics_by_name, hash_name(name), topic_name_eq, &name);
    return s ? s->val : NULL;
}

/* Index of partition id in t, or where it would be inserted (with *found false). */
static int32_t partition_search(const gr_metadata_topic *t, int32_t id, bool *found)
{
    int32_t lo = 0, hi = t->partition_count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (t->partitions[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->partition_count && t->partitions[lo].id == id;
    return lo;
}

static int32_t broker_search(const gr_metadata_image *img, int32_t id, bool *found)
{
    int32_t lo = 0, hi = img->broker_count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (img->brokers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < img->broker_count && img->brokers[lo].id == id;
    return lo;
}

static gr_metadata_broker *find_broker(const gr_metadata_image *img, int32_t id)
{
    bool found;
    int32_t i = broker_search(img, id, &found);
    return found ? &img->brokers[i] : NULL;
}

typedef struct {
    int8_t type;
    gr_str name;
} resource_key;

static uint64_t hash_resource(int8_t type, gr_str name)
{
    uint8_t t = (uint8_t)type;
    uint64_t h = hash_bytes(HASH_SEED, &t, 1);
    return hash_mix(hash_bytes(h, name.ptr, name.len > 0 ? (size_t)name.len : 0));
}

static bool resource_eq(const void *val, const void *key)
{
    const gr_metadata_config_resource *r = val;
    const resource_key *k = key;
    return r->type == k->type && str_same(r->name, k->name);
}

static md_slot *find_resource(const gr_metadata_image *img, int8_t type, gr_str name)
{
    if (str_is_null(name))
        return NULL;
    resource_key k = {type, name};
    return map_find(&img->configs, hash_resource(type, name), resource_eq, &k);
}

static int32_t config_entry_index(const gr_metadata_config_resource *res, gr_str key)
{
    for (int32_t i = 0; i < res->count; i++)
        if (str_same(res->entries[i].key, key))
            return i;
    return -1;
}

static int32_t feature_search(const gr_metadata_image *img, gr_str name, bool *found)
{
    int32_t lo = 0, hi = img->feature_count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (str_cmp(img->features[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < img->feature_count && str_same(img->features[lo].name, name);
    return lo;
}

/* ---- topics and partitions ---- */

int gr_metadata_apply_topic(gr_metadata_image *img, const gr_topic_record *r)
{
    if (str_is_null(r->name) || r->name.len == 0 || gr_uuid_is_zero(&r->topic_id))
        return GR_METADATA_ERR_INVALID;
    if (find_topic_by_name(img, r->name) || find_topic_by_id(img, &r->topic_id))
        return GR_METADATA_ERR_INVALID;

    gr_metadata_topic *t = calloc(1, sizeof *t);
    if (!t)
        return GR_METADATA_ERR_NOMEM;
    t->id = r->topic_id;
    if (str_dup(r->name, &t->name) != GR_METADATA_OK)
        goto nomem;
    if (img->topic_count == img->topic_cap) {
        size_t cap = img->topic_cap ? img->topic_cap * 2 : 16;
        gr_metadata_topic **np = realloc(img->topics, cap * sizeof *np);
        if (!np)
            goto nomem;
        img->topics = np;
        img->topic_cap = cap;
    }
    if (map_reserve(&img->topics_by_name, img->topic_count + 1) != GR_METADATA_OK ||
        map_reserve(&img->topics_by_id, img->topic_count + 1) != GR_METADATA_OK)
        goto nomem;

    t->slot_ = img->topic_count;
    img->topics[img->topic_count++] = t;
    map_insert(&img->topics_by_name, hash_name(t->name), t);
    map_insert(&img->topics_by_id, hash_id(&t->id), t);
    return GR_METADATA_OK;
nomem:
    topic_free(t);
    return GR_METADATA_ERR_NOMEM;
}

static bool leader_recovery_state_valid(int8_t s) { return s == 0 || s == 1; }

int gr_metadata_apply_partition(gr_metadata_image *img, const gr_partition_record *r)
{
    gr_metadata_topic *t = find_topic_by_id(img, &r->topic_id);
    if (!t || r->partition_id < 0 || r->leader < -1 ||
        !leader_recovery_state_valid(r->leader_recovery_state))
        return GR_METADATA_ERR_INVALID;

    gr_metadata_partition p = {.id = r->partition_id,
                               .leader = r->leader,
                               .leader_epoch = r->leader_epoch,
                               .partition_epoch = r->partition_epoch,
                               .leader_recovery_state = r->leader_recovery_state};
    int err;
    if ((err = ids_dup(r->replicas, r->replicas_count, &p.replicas)) ||
        (err = ids_dup(r->isr, r->isr_count, &p.isr)) ||
        (err = ids_dup(r->removing_replicas, r->removing_replicas_count, &p.removing)) ||
        (err = ids_dup(r->adding_replicas, r->adding_replicas_count, &p.adding)) ||
        (err = ids_dup(r->eligible_leader_replicas, r->eligible_leader_replicas_count, &p.elr)) ||
        (err = ids_dup(r->last_known_elr, r->last_known_elr_count, &p.last_known_elr)))
        goto fail;

    bool found;
    int32_t i = partition_search(t, r->partition_id, &found);
    if (found) {
        /* Kafka replaces the registration wholesale. */
        partition_free(&t->partitions[i]);
        t->partitions[i] = p;
        return GR_METADATA_OK;
    }
    void *arr = t->partitions;
    if ((err = grow(&arr, &t->partition_cap_, t->partition_count + 1, sizeof p)))
        goto fail;
    t->partitions = arr;
    memmove(&t->partitions[i + 1], &t->partitions[i],
            (size_t)(t->partition_count - i) * sizeof p);
    t->partitions[i] = p;
    t->partition_count++;
    return GR_METADATA_OK;
fail:
    partition_free(&p);
    return err;
}

int gr_metadata_apply_partition_change(gr_metadata_image *img,
                                       const gr_partition_change_record *r)
{
    gr_metadata_topic *t = find_topic_by_id(img, &r->topic_id);
    if (!t)
        return GR_METADATA_ERR_INVALID;
    bool found;
    int32_t i = partition_search(t, r->partition_id, &found);
    if (!found)
        return GR_METADATA_ERR_INVALID;
    /* -2: unchanged, -1: no leader, else a broker id. */
    if (r->leader < -2)
        return GR_METADATA_ERR_INVALID;
    if (r->leader_recovery_state != -1 && !leader_recovery_state_valid(r->leader_recovery_state))
        return GR_METADATA_ERR_INVALID;

    /* New copies of the arrays the record carries (count < 0: null, unchanged). */
    struct {
        const int32_t *src;
        int32_t n;
        gr_metadata_ids copy;
    } a[6] = {
        {r->replicas, r->replicas_count, {0}},
        {r->isr, r->isr_count, {0}},
        {r->removing_replicas, r->removing_replicas_count, {0}},
        {r->adding_replicas, r->adding_replicas_count, {0}},
        {r->eligible_leader_replicas, r->eligible_leader_replicas_count, {0}},
        {r->last_known_elr, r->last_known_elr_count, {0}},
    };
    int err = GR_METADATA_OK;
    for (int k = 0; k < 6 && !err; k++)
        if (a[k].n >= 0)
            err = ids_dup(a[k].src, a[k].n, &a[k].copy);
    if (err) {
        for (int k = 0; k < 6; k++)
            ids_free(&a[k].copy);
        return err;
    }

    gr_metadata_partition *p = &t->partitions[i];
    gr_metadata_ids *dst[6] = {&p->replicas, &p->isr, &p->removing,
                               &p->adding,   &p->elr, &p->last_known_elr};
    for (int k = 0; k < 6; k++) {
        if (a[k].n < 0)
            continue;
        ids_free(dst[k]);
        *dst[k] = a[k].copy;
    }
    if (r->leader != -2) {
        p->leader = r->leader;
        p->leader_epoch++;
    }
    if (r->leader_recovery_state != -1)
        p->leader_recovery_state = r->leader_recovery_state;
    p->partition_epoch++;
    return GR_METADATA_OK;
}

static void remove_resource(gr_metadata_image *img, int8_t type, gr_str name)
{
    md_slot *s = find_resource(img, type, name);
    if (!s)
        return;
    gr_metadata_config_resource *res = s->val;
    map_remove(&img->configs, s);
    resource_free(res);
}

int gr_metadata_apply_remove_topic(gr_metadata_image *img, const gr_remove_topic_record *r)
{
    gr_metadata_topic *t = find_topic_by_id(img, &r->topic_id);
    if (!t)
        return GR_METADATA_ERR_INVALID;
    map_remove(&img->topics_by_id, map_find(&img->topics_by_id, hash_id(&t->id), topic_id_eq, &t->id));
    map_remove(&img->topics_by_name,
               map_find(&img->topics_by_name, hash_name(t->name), topic_name_eq, &t->name));
    gr_metadata_topic *last = img->topics[--img->topic_count];
    img->topics[t->slot_] = last;
    last->slot_ = t->slot_;
    remove_resource(img, GR_METADATA_RESOURCE_TOPIC, t->name);
    topic_free(t);
    return GR_METADATA_OK;
}

/* ---- brokers ---- */

int gr_metadata_apply_register_broker(gr_metadata_image *img, const gr_register_broker_record *r)
{
    if (r->broker_id < 0 || r->end_points_count < 0 || r->features_count < 0 ||
        (r->end_points_count > 0 && !r->end_points) || (r->features_count > 0 && !r->features))
        return GR_METADATA_ERR_INVALID;
    for (int32_t i = 0; i < r->end_points_count; i++)
        if (str_is_null(r->end_points[i].name) || str_is_null(r->end_points[i].host))
            return GR_METADATA_ERR_INVALID;
    for (int32_t i = 0; i < r->features_count; i++)
        if (str_is_null(r->features[i].name))
            return GR_METADATA_ERR_INVALID;

    gr_metadata_broker b = {.id = r->broker_id,
                            .incarnation_id = r->incarnation_id,
                            .epoch = r->broker_epoch,
                            .fenced = r->fenced,
                            .in_controlled_shutdown = r->in_controlled_shutdown};
    if (r->end_points_count > 0) {
        b.endpoints = calloc((size_t)r->end_points_count, sizeof *b.endpoints);
        if (!b.endpoints)
            goto nomem;
        b.endpoint_count = r->end_points_count;
        for (int32_t i = 0; i < r->end_points_count; i++) {
            const gr_register_broker_record_broker_endpoint *e = &r->end_points[i];
            b.endpoints[i].port = e->port;
            b.endpoints[i].security_protocol = e->security_protocol;
            if (str_dup(e->name, &b.endpoints[i].name) || str_dup(e->host, &b.endpoints[i].host))
                goto nomem;
        }
    }
    if (r->features_count > 0) {
        b.features = calloc((size_t)r->features_count, sizeof *b.features);
        if (!b.features)
            goto nomem;
        b.feature_count = r->features_count;
        for (int32_t i = 0; i < r->features_count; i++) {
            b.features[i].min_version = r->features[i].min_supported_version;
            b.features[i].max_version = r->features[i].max_supported_version;
            if (str_dup(r->features[i].name, &b.features[i].name))
                goto nomem;
        }
    }
    if (str_dup(r->rack, &b.rack))
        goto nomem;

    bool found;
    int32_t i = broker_search(img, r->broker_id, &found);
    if (found) {
        /* A new incarnation replaces the old registration entirely. */
        broker_clear(&img->brokers[i]);
        img->brokers[i] = b;
        return GR_METADATA_OK;
    }
    void *arr = img->brokers;
    if (grow(&arr, &img->broker_cap, img->broker_count + 1, sizeof b))
        goto nomem;
    img->brokers = arr;
    memmove(&img->brokers[i + 1], &img->brokers[i],
            (size_t)(img->broker_count - i) * sizeof b);
    img->brokers[i] = b;
    img->broker_count++;
    return GR_METADATA_OK;
nomem:
    broker_clear(&b);
    return GR_METADATA_ERR_NOMEM;
}

/* The registered broker id if its epoch is epoch, else NULL. */
static gr_metadata_broker *broker_at_epoch(gr_metadata_image *img, int32_t id, int64_t epoch)
{
    gr_metadata_broker *b = find_broker(img, id);
    return b && b->epoch == epoch ? b : NULL;
}

int gr_metadata_apply_unregister_broker(gr_metadata_image *img,
                                        const gr_unregister_broker_record *r)
{
    gr_metadata_broker *b = broker_at_epoch(img, r->broker_id, r->broker_epoch);
    if (!b)
        return GR_METADATA_ERR_INVALID;
    int32_t i = (int32_t)(b - img->brokers);
    broker_clear(b);
    memmove(&img->brokers[i], &img->brokers[i + 1],
            (size_t)(img->broker_count - i - 1) * sizeof *b);
    img->broker_count--;
    return GR_METADATA_OK;
}

int gr_metadata_apply_fence_broker(gr_metadata_image *img, const gr_fence_broker_record *r)
{
    gr_metadata_broker *b = broker_at_epoch(img, r->id, r->epoch);
    if (!b)
        return GR_METADATA_ERR_INVALID;
    b->fenced = true;
    return GR_METADATA_OK;
}

int gr_metadata_apply_unfence_broker(gr_metadata_image *img, const gr_unfence_broker_record *r)
{
    gr_metadata_broker *b = broker_at_epoch(img, r->id, r->epoch);
    if (!b)
        return GR_METADATA_ERR_INVALID;
    b->fenced = false;
    return GR_METADATA_OK;
}

int gr_metadata_apply_broker_registration_change(gr_metadata_image *img,
                                                 const gr_broker_registration_change_record *r)
{
    gr_metadata_broker *b = broker_at_epoch(img, r->broker_id, r->broker_epoch);
    if (!b)
        return GR_METADATA_ERR_INVALID;
    /* Fenced: -1 unfenced, 0 unchanged, 1 fenced. InControlledShutdown: 0
     * unchanged, 1 now in controlled shutdown. Anything else is invalid. */
    if (r->fenced < -1 || r->fenced > 1 || r->in_controlled_shutdown < 0 ||
        r->in_controlled_shutdown > 1)
        return GR_METADATA_ERR_INVALID;
    if (r->fenced != 0)
        b->fenced = r->fenced == 1;
    if (r->in_controlled_shutdown == 1)
        b->in_controlled_shutdown = true;
    return GR_METADATA_OK;
}

/* ---- configs, features, producer ids ---- */

int gr_metadata_apply_config(gr_metadata_image *img, const gr_config_record *r)
{
    if (r->resource_type <= 0 || str_is_null(r->resource_name) || str_is_null(r->name))
        return GR_METADATA_ERR_INVALID;
    md_slot *s = find_resource(img, r->resource_type, r->resource_name);
    gr_metadata_config_resource *res = s ? s->val : NULL;
    int32_t i = res ? config_entry_index(res, r->name) : -1;

    if (str_is_null(r->value)) {
        if (i < 0)
            return GR_METADATA_OK; /* deleting what is not set */
        str_free(&res->entries[i].key);
        str_free(&res->entries[i].value);
        memmove(&res->entries[i], &res->entries[i + 1],
                (size_t)(res->count - i - 1) * sizeof *res->entries);
        res->count--;
        if (res->count == 0) {
            map_remove(&img->configs, s);
            resource_free(res);
        }
        return GR_METADATA_OK;
    }

    gr_str value, key = GR_STR_NULL;
    if (str_dup(r->value, &value))
        return GR_METADATA_ERR_NOMEM;
    if (i >= 0) {
        str_free(&res->entries[i].value);
        res->entries[i].value = value;
        return GR_METADATA_OK;
    }
    gr_metadata_config_resource *fresh = NULL;
    if (str_dup(r->name, &key))
        goto nomem;
    if (!res) {
        fresh = calloc(1, sizeof *fresh);
        if (!fresh)
            goto nomem;
        fresh->type = r->resource_type;
        if (str_dup(r->resource_name, &fresh->name) ||
            map_reserve(&img->configs, img->configs.count + 1))
            goto nomem;
        res = fresh;
    }
    void *arr = res->entries;
    if (grow(&arr, &res->cap_, res->count + 1, sizeof *res->entries))
        goto nomem;
    res->entries = arr;
    res->entries[res->count++] = (gr_metadata_config_entry){key, value};
    if (fresh)
        map_insert(&img->configs, hash_resource(fresh->type, fresh->name), fresh);
    return GR_METADATA_OK;
nomem:
    resource_free(fresh);
    str_free(&key);
    str_free(&value);
    return GR_METADATA_ERR_NOMEM;
}

int gr_metadata_apply_feature_level(gr_metadata_image *img, const gr_feature_level_record *r)
{
    if (str_is_null(r->name) || r->feature_level < 0)
        return GR_METADATA_ERR_INVALID;
    bool found;
    int32_t i = feature_search(img, r->name, &found);
    if (r->feature_level == 0) {
        if (found) {
            str_free(&img->features[i].name);
            memmove(&img->features[i], &img->features[i + 1],
                    (size_t)(img->feature_count - i - 1) * sizeof *img->features);
            img->feature_count--;
        }
        return GR_METADATA_OK;
    }
    if (found) {
        img->features[i].level = r->feature_level;
        return GR_METADATA_OK;
    }
    gr_metadata_feature f = {.level = r->feature_level};
    if (str_dup(r->name, &f.name))
        return GR_METADATA_ERR_NOMEM;
    void *arr = img->features;
    if (grow(&arr, &img->feature_cap, img->feature_count + 1, sizeof f)) {
        str_free(&f.name);
        return GR_METADATA_ERR_NOMEM;
    }
    img->features = arr;
    memmove(&img->features[i + 1], &img->features[i],
            (size_t)(img->feature_count - i) * sizeof f);
    img->features[i] = f;
    img->feature_count++;
    return GR_METADATA_OK;
}

int gr_metadata_apply_producer_ids(gr_metadata_image *img, const gr_producer_ids_record *r)
{
    /* Blocks only move forward (Kafka's controller refuses to replay one that does not). */
    if (r->next_producer_id < 0 || r->next_producer_id <= img->next_producer_id)
        return GR_METADATA_ERR_INVALID;
    img->next_producer_id = r->next_producer_id;
    return GR_METADATA_OK;
}

/* ---- dispatch ---- */

int gr_metadata_apply_record(gr_metadata_image *img, int16_t type, const void *m)
{
    switch (type) {
    case GR_METADATA_RECORD_REGISTER_BROKER: return gr_metadata_apply_register_broker(img, m);
    case GR_METADATA_RECORD_UNREGISTER_BROKER: return gr_metadata_apply_unregister_broker(img, m);
    case GR_METADATA_RECORD_TOPIC: return gr_metadata_apply_topic(img, m);
    case GR_METADATA_RECORD_PARTITION: return gr_metadata_apply_partition(img, m);
    case GR_METADATA_RECORD_CONFIG: return gr_metadata_apply_config(img, m);
    case GR_METADATA_RECORD_PARTITION_CHANGE: return gr_metadata_apply_partition_change(img, m);
    case GR_METADATA_RECORD_FENCE_BROKER: return gr_metadata_apply_fence_broker(img, m);
    case GR_METADATA_RECORD_UNFENCE_BROKER: return gr_metadata_apply_unfence_broker(img, m);
    case GR_METADATA_RECORD_REMOVE_TOPIC: return gr_metadata_apply_remove_topic(img, m);
    case GR_METADATA_RECORD_FEATURE_LEVEL: return gr_metadata_apply_feature_level(img, m);
    case GR_METADATA_RECORD_PRODUCER_IDS: return gr_metadata_apply_producer_ids(img, m);
    case GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE:
        return gr_metadata_apply_broker_registration_change(img, m);
    case GR_METADATA_RECORD_NO_OP: return GR_METADATA_OK;
    default: return GR_METADATA_ERR_VERSION;
    }
}

int gr_metadata_apply(gr_metadata_image *img, const uint8_t *frame, size_t len, int64_t offset,
                      int32_t epoch)
{
    gr_reader r;
    gr_reader_init(&r, frame, len);
    gr_arena a;
    gr_arena_init(&a);
    int16_t type, version;
    void *m = NULL;
    int err = gr_metadata_record_decode(&r, &a, &type, &version, &m);
    switch (err) {
    case GR_OK:
        err = gr_reader_remaining(&r) != 0 ? GR_METADATA_ERR_DECODE
                                           : gr_metadata_apply_record(img, type, m);
        break;
    case GR_ERR_VERSION: err = GR_METADATA_ERR_VERSION; break;
    case GR_ERR_NOMEM: err = GR_METADATA_ERR_NOMEM; break;
    default: err = GR_METADATA_ERR_DECODE; break;
    }
    gr_arena_free(&a);
    if (err == GR_METADATA_OK) {
        img->last_offset = offset;
        img->last_epoch = epoch;
    }
    return err;
}

/* ---- reading ---- */

int64_t gr_metadata_last_offset(const gr_metadata_image *img) { return img->last_offset; }
int32_t gr_metadata_last_epoch(const gr_metadata_image *img) { return img->last_epoch; }

const gr_metadata_topic *gr_metadata_topic_by_name(const gr_metadata_image *img, gr_str name)
{
    return find_topic_by_name(img, name);
}

const gr_metadata_topic *gr_metadata_topic_by_id(const gr_metadata_image *img, const gr_uuid *id)
{
    return find_topic_by_id(img, id);
}

size_t gr_metadata_topic_count(const gr_metadata_image *img) { return img->topic_count; }

const gr_metadata_topic *gr_metadata_topic_at(const gr_metadata_image *img, size_t i)
{
    return i < img->topic_count ? img->topics[i] : NULL;
}

const gr_metadata_partition *gr_metadata_partition_get(const gr_metadata_topic *t, int32_t id)
{
    bool found;
    int32_t i = partition_search(t, id, &found);
    return found ? &t->partitions[i] : NULL;
}

const gr_metadata_broker *gr_metadata_broker_get(const gr_metadata_image *img, int32_t id)
{
    return find_broker(img, id);
}

size_t gr_metadata_broker_count(const gr_metadata_image *img) { return (size_t)img->broker_count; }

const gr_metadata_broker *gr_metadata_broker_at(const gr_metadata_image *img, size_t i)
{
    return i < (size_t)img->broker_count ? &img->brokers[i] : NULL;
}

const gr_metadata_config_resource *gr_metadata_config_resource_get(const gr_metadata_image *img,
                                                               int8_t type, gr_str resource)
{
    md_slot *s = find_resource(img, type, resource);
    return s ? s->val : NULL;
}

gr_str gr_metadata_config(const gr_metadata_image *img, int8_t type, gr_str resource,
                          const char *key)
{
    const gr_metadata_config_resource *res = gr_metadata_config_resource_get(img, type, resource);
    if (!res || !key)
        return GR_STR_NULL;
    int32_t i = config_entry_index(res, gr_str_from(key));
    return i < 0 ? GR_STR_NULL : res->entries[i].value;
}

int16_t gr_metadata_feature_level(const gr_metadata_image *img, const char *name)
{
    if (!name)
        return 0;
    bool found;
    int32_t i = feature_search(img, gr_str_from(name), &found);
    return found ? img->features[i].level : 0;
}

size_t gr_metadata_feature_count(const gr_metadata_image *img) { return (size_t)img->feature_count; }

const gr_metadata_feature *gr_metadata_feature_at(const gr_metadata_image *img, size_t i)
{
    return i < (size_t)img->feature_count ? &img->features[i] : NULL;
}

int64_t gr_metadata_next_producer_id(const gr_metadata_image *img) { return img->next_producer_id; }

/* ---- snapshots ---- */

typedef struct {
    gr_writer w;
    gr_metadata_emit_fn emit;
    void *ctx;
} emitter;

static int emit_record(emitter *e, int16_t type, int16_t version, const void *m)
{
    e->w.len = 0;
    int err = gr_metadata_record_encode(type, version, m, &e->w);
    if (err == GR_ERR_NOMEM || !gr_writer_ok(&e->w))
        return GR_METADATA_ERR_NOMEM;
    if (err != GR_OK)
        return GR_METADATA_ERR_VERSION; /* a bug: the image only holds encodable values */
    return e->emit(e->ctx, e->w.p, e->w.len);
}

static int write_broker(emitter *e, const gr_metadata_broker *b)
{
    gr_register_broker_record r;
    gr_register_broker_record_init(&r);
    r.broker_id = b->id;
    r.incarnation_id = b->incarnation_id;
    r.broker_epoch = b->epoch;
    r.rack = b->rack;
    r.fenced = b->fenced;
    r.in_controlled_shutdown = b->in_controlled_shutdown;
    gr_register_broker_record_broker_endpoint *eps = NULL;
    gr_register_broker_record_broker_feature *fs = NULL;
    int err = GR_METADATA_ERR_NOMEM;
    if (b->endpoint_count > 0 && !(eps = calloc((size_t)b->endpoint_count, sizeof *eps)))
        goto out;
    if (b->feature_count > 0 && !(fs = calloc((size_t)b->feature_count, sizeof *fs)))
        goto out;
    for (int32_t i = 0; i < b->endpoint_count; i++)
        eps[i] = (gr_register_broker_record_broker_endpoint){
            b->endpoints[i].name, b->endpoints[i].host, b->endpoints[i].port,
            b->endpoints[i].security_protocol};
    for (int32_t i = 0; i < b->feature_count; i++)
        fs[i] = (gr_register_broker_record_broker_feature){
            b->features[i].name, b->features[i].min_version, b->features[i].max_version};
    r.end_points = eps;
    r.end_points_count = b->endpoint_count;
    r.features = fs;
    r.features_count = b->feature_count;
    /* v1: the first version that carries InControlledShutdown. */
    err = emit_record(e, GR_METADATA_RECORD_REGISTER_BROKER, 1, &r);
out:
    free(eps);
    free(fs);
    return err;
}

static int write_topic(emitter *e, const gr_metadata_topic *t)
{
    gr_topic_record tr;
    gr_topic_record_init(&tr);
    tr.name = t->name;
    tr.topic_id = t->id;
    int err = emit_record(e, GR_METADATA_RECORD_TOPIC, 0, &tr);
    for (int32_t i = 0; i < t->partition_count && !err; i++) {
        const gr_metadata_partition *p = &t->partitions[i];
        gr_partition_record pr;
        gr_partition_record_init(&pr);
        pr.partition_id = p->id;
        pr.topic_id = t->id;
        pr.replicas = p->replicas.ids;
        pr.replicas_count = p->replicas.count;
        pr.isr = p->isr.ids;
        pr.isr_count = p->isr.count;
        pr.removing_replicas = p->removing.ids;
        pr.removing_replicas_count = p->removing.count;
        pr.adding_replicas = p->adding.ids;
        pr.adding_replicas_count = p->adding.count;
        pr.leader = p->leader;
        pr.leader_recovery_state = p->leader_recovery_state;
        pr.leader_epoch = p->leader_epoch;
        pr.partition_epoch = p->partition_epoch;
        /* The ELR fields exist from v2 on; without them v0 is what every
         * reader understands. */
        int16_t version = 0;
        if (p->elr.count > 0 || p->last_known_elr.count > 0) {
            version = 2;
            pr.eligible_leader_replicas = p->elr.ids;
            pr.eligible_leader_replicas_count = p->elr.count;
            pr.last_known_elr = p->last_known_elr.ids;
            pr.last_known_elr_count = p->last_known_elr.count;
        }
        err = emit_record(e, GR_METADATA_RECORD_PARTITION, version, &pr);
    }
    return err;
}

int gr_metadata_image_write(const gr_metadata_image *img, gr_metadata_emit_fn emit, void *ctx)
{
    emitter e = {.emit = emit, .ctx = ctx};
    gr_writer_init(&e.w, 256);
    int err = GR_METADATA_OK;
    for (int32_t i = 0; i < img->feature_count && !err; i++) {
        gr_feature_level_record r;
        gr_feature_level_record_init(&r);
        r.name = img->features[i].name;
        r.feature_level = img->features[i].level;
        err = emit_record(&e, GR_METADATA_RECORD_FEATURE_LEVEL, 0, &r);
    }
    for (int32_t i = 0; i < img->broker_count && !err; i++)
        err = write_broker(&e, &img->brokers[i]);
    for (size_t i = 0; i < img->topic_count && !err; i++)
        err = write_topic(&e, img->topics[i]);
    for (size_t i = 0; i < img->configs.cap && !err; i++) {
        const gr_metadata_config_resource *res = img->configs.slots[i].val;
        for (int32_t k = 0; res && k < res->count && !err; k++) {
            gr_config_record r;
            gr_config_record_init(&r);
            r.resource_type = res->type;
            r.resource_name = res->name;
            r.name = res->entries[k].key;
            r.value = res->entries[k].value;
            err = emit_record(&e, GR_METADATA_RECORD_CONFIG, 0, &r);
        }
    }
    if (!err && img->next_producer_id >= 0) {
        gr_producer_ids_record r;
        gr_producer_ids_record_init(&r);
        r.broker_id = -1;
        r.broker_epoch = -1;
        r.next_producer_id = img->next_producer_id;
        err = emit_record(&e, GR_METADATA_RECORD_PRODUCER_IDS, 0, &r);
    }
    gr_writer_free(&e.w);
    return err;
}

/* ---- equality ---- */

static bool broker_equal(const gr_metadata_broker *a, const gr_metadata_broker *b)
{
    if (a->id != b->id || memcmp(a->incarnation_id.b, b->incarnation_id.b, 16) != 0 ||
        a->epoch != b->epoch || !str_same(a->rack, b->rack) || a->fenced != b->fenced ||
        a->in_controlled_shutdown != b->in_controlled_shutdown ||
        a->endpoint_count != b->endpoint_count || a->feature_count != b->feature_count)
        return false;
    for (int32_t i = 0; i < a->endpoint_count; i++) {
        const gr_metadata_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];
        if (!str_same(x->name, y->name) || !str_same(x->host, y->host) || x->port != y->port ||
            x->security_protocol != y->security_protocol)
            return false;
    }
    for (int32_t i = 0; i < a->feature_count; i++) {
        const gr_metadata_broker_feature *x = &a->features[i], *y = &b->features[i];
        if (!str_same(x->name, y->name) || x->min_version != y->min_version ||
            x->max_version != y->max_version)
            return false;
    }
    return true;
}

static bool partition_equal(const gr_metadata_partition *a, const gr_metadata_partition *b)
{
    return a->id == b->id && ids_same(&a->replicas, &b->replicas) && ids_same(&a->isr, &b->isr) &&
           ids_same(&a->removing, &b->removing) && ids_same(&a->adding, &b->adding) &&
           ids_same(&a->elr, &b->elr) && ids_same(&a->last_known_elr, &b->last_known_elr) &&
           a->leader == b->leader && a->leader_epoch == b->leader_epoch &&
           a->partition_epoch == b->partition_epoch &&
           a->leader_recovery_state == b->leader_recovery_state;
}

static bool topic_equal(const gr_metadata_topic *a, const gr_metadata_topic *b)
{
    if (!str_same(a->name, b->name) || memcmp(a->id.b, b->id.b, 16) != 0 ||
        a->partition_count != b->partition_count)
        return false;
    for (int32_t i = 0; i < a->partition_count; i++)
        if (!partition_equal(&a->partitions[i], &b->partitions[i]))
            return false;
    return true;
}

/* Every resource of a has the same entries in b (order of keys aside). */
static bool configs_within(const gr_metadata_image *a, const gr_metadata_image *b)
{
    for (size_t i = 0; i < a->configs.cap; i++) {
        const gr_metadata_config_resource *ra = a->configs.slots[i].val;
        if (!ra)
            continue;
        const gr_metadata_config_resource *rb = gr_metadata_config_resource_get(b, ra->type, ra->name);
        if (!rb || rb->count != ra->count)
            return false;
        for (int32_t k = 0; k < ra->count; k++) {
            int32_t j = config_entry_index(rb, ra->entries[k].key);
            if (j < 0 || !str_same(ra->entries[k].value, rb->entries[j].value))
                return false;
        }
    }
    return true;
}

bool gr_metadata_image_equal(const gr_metadata_image *a, const gr_metadata_image *b)
{
    if (a->topic_count != b->topic_count || a->broker_count != b->broker_count ||
        a->feature_count != b->feature_count || a->configs.count != b->configs.count ||
        a->next_producer_id != b->next_producer_id)
        return false;
    for (int32_t i = 0; i < a->feature_count; i++)
        if (!str_same(a->features[i].name, b->features[i].name) ||
            a->features[i].level != b->features[i].level)
            return false;
    for (int32_t i = 0; i < a->broker_count; i++)
        if (!broker_equal(&a->brokers[i], &b->brokers[i]))
            return false;
    for (size_t i = 0; i < a->topic_count; i++) {
        const gr_metadata_topic *tb = find_topic_by_id(b, &a->topics[i]->id);
        if (!tb || !topic_equal(a->topics[i], tb))
            return false;
    }
    return configs_within(a, b);
}
