/*
 * test_proto.c - the generated Kafka protocol codec (proto/messages.h).
 *
 * Three kinds of test:
 *   - round trips of every supported message at every supported version,
 *     with every field set to something other than its default;
 *   - golden byte vectors written by hand from the protocol specification
 *     (decoded and checked field by field, and re-created by encoding);
 *   - hostile input: truncation at every offset, absurd counts and lengths,
 *     nulls where the version forbids them, unknown tags, bad versions.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/messages.h"
#include "tests/unit/suites.h"

/* ---- a uniform view of every message type, for table-driven tests ---- */

typedef struct {
    const char *name;
    size_t struct_size;
    int16_t min_version, max_version;
    int (*encode)(const void *m, int16_t version, gr_writer *w);
    size_t (*size)(const void *m, int16_t version);
    int (*decode)(void *m, gr_reader *r, int16_t version, gr_arena *a);
} codec;

#define CODEC(T, lo, hi)                                                                           \
    static int T##_enc_any(const void *m, int16_t v, gr_writer *w) { return T##_encode(m, v, w); } \
    static size_t T##_size_any(const void *m, int16_t v) { return T##_size(m, v); }                \
    static int T##_dec_any(void *m, gr_reader *r, int16_t v, gr_arena *a)                         \
    {                                                                                              \
        return T##_decode(m, r, v, a);                                                             \
    }                                                                                              \
    static const codec T##_codec = {#T, sizeof(T), lo, hi, T##_enc_any, T##_size_any, T##_dec_any};

CODEC(gr_request_header, 0, 2)
CODEC(gr_response_header, 0, 1)
CODEC(gr_api_versions_request, 0, 4)
CODEC(gr_api_versions_response, 0, 4)
CODEC(gr_metadata_request, 0, 12)
CODEC(gr_metadata_response, 0, 12)

/*
 * Inputs decoded by decode_exact() stay allocated until the test ends, since
 * decoded strings and bytes point into them.
 */
static void *inputs[32];
static int n_inputs;

static void free_inputs(void)
{
    while (n_inputs > 0)
        free(inputs[--n_inputs]);
}

/* Decodes exactly len bytes from a heap copy of that size (so that the
 * sanitizers see any read past the end). Returns the decode result. */
static int decode_exact(const codec *c, const uint8_t *bytes, size_t len, int16_t v, void *out,
                        gr_arena *a, size_t *consumed)
{
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    if (len)
        memcpy(copy, bytes, len);
    gr_reader r;
    gr_reader_init(&r, copy, len);
    int err = c->decode(out, &r, v, a);
    if (consumed)
        *consumed = r.pos;
    if (err == GR_OK) {
        ck_assert_int_lt(n_inputs, (int)(sizeof inputs / sizeof inputs[0]));
        inputs[n_inputs++] = copy;
    } else {
        free(copy);
    }
    return err;
}

/*
 * Encodes m at version v, checks size() against what was written, decodes it
 * (all bytes consumed), re-encodes the decoded struct and checks the bytes
 * are identical. Returns the decoded struct (arena memory) for field checks.
 */
static void *roundtrip(const codec *c, const void *m, int16_t v, gr_arena *a)
{
    gr_writer w1, w2;
    gr_writer_init(&w1, 0);
    gr_writer_init(&w2, 0);
    int err = c->encode(m, v, &w1);
    ck_assert_msg(err == GR_OK, "%s v%d encode: %s", c->name, v, gr_err_str(err));
    ck_assert_msg(c->size(m, v) == w1.len, "%s v%d: size %zu, encoded %zu", c->name, v,
                  c->size(m, v), w1.len);

    void *d = gr_arena_alloc(a, c->struct_size);
    ck_assert_ptr_nonnull(d);
    /* The decoded views must outlive w1: decode from an arena copy. */
    uint8_t *bytes = gr_arena_alloc(a, w1.len + 1);
    ck_assert_ptr_nonnull(bytes);
    if (w1.len) /* v0 of some messages encodes to nothing */
        memcpy(bytes, w1.p, w1.len);
    gr_reader r;
    gr_reader_init(&r, bytes, w1.len);
    err = c->decode(d, &r, v, a);
    ck_assert_msg(err == GR_OK, "%s v%d decode: %s", c->name, v, gr_err_str(err));
    ck_assert_msg(r.pos == w1.len, "%s v%d: decode consumed %zu of %zu", c->name, v, r.pos,
                  w1.len);

    ck_assert_int_eq(c->encode(d, v, &w2), GR_OK);
    ck_assert_uint_eq(w2.len, w1.len);
    if (w1.len)
        ck_assert_mem_eq(w2.p, w1.p, w1.len);
    ck_assert_uint_eq(c->size(d, v), w1.len);
    gr_writer_free(&w1);
    gr_writer_free(&w2);
    return d;
}

/* gr_str_eq, except that an empty view may have a NULL pointer. */
static bool str_eq(gr_str s, const char *cstr)
{
    if (s.len == 0)
        return cstr && cstr[0] == '\0';
    return gr_str_eq(s, cstr);
}

static gr_uuid uuid_of(uint8_t seed)
{
    gr_uuid u;
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(seed + i);
    return u;
}

static void *alloc_items(gr_arena *a, int32_t n, size_t size)
{
    void *p = gr_arena_calloc(a, (size_t)n, size);
    ck_assert_ptr_nonnull(p);
    return p;
}

static int32_t *int32s(gr_arena *a, int32_t n, int32_t first)
{
    int32_t *p = alloc_items(a, n, sizeof *p);
    for (int32_t i = 0; i < n; i++)
        p[i] = first + i;
    return p;
}

/* ---- builders: every field away from its default ---- */

static void build_request_header(gr_request_header *m, bool null_client)
{
    gr_request_header_init(m);
    m->request_api_key = 3;
    m->request_api_version = 12;
    m->correlation_id = 0x01020304;
    m->client_id = null_client ? GR_STR_NULL : gr_str_from("console-producer");
}

static void build_api_versions_response(gr_api_versions_response *m, gr_arena *a)
{
    gr_api_versions_response_init(m);
    m->error_code = 35;
    m->api_keys_count = 3;
    m->api_keys = alloc_items(a, 3, sizeof *m->api_keys);
    for (int i = 0; i < 3; i++) {
        gr_api_versions_response_api_version_init(&m->api_keys[i]);
        m->api_keys[i].api_key = (int16_t)(i * 9);
        m->api_keys[i].min_version = (int16_t)i;
        m->api_keys[i].max_version = (int16_t)(i + 10);
    }
    m->throttle_time_ms = 250;
    m->supported_features_count = 2;
    m->supported_features = alloc_items(a, 2, sizeof *m->supported_features);
    m->supported_features[0].name = gr_str_from("metadata.version");
    m->supported_features[0].min_version = 1;
    m->supported_features[0].max_version = 21;
    m->supported_features[1].name = gr_str_from("kraft.version");
    m->supported_features[1].min_version = 0;
    m->supported_features[1].max_version = 1;
    m->finalized_features_epoch = 42;
    m->finalized_features_count = 1;
    m->finalized_features = alloc_items(a, 1, sizeof *m->finalized_features);
    m->finalized_features[0].name = gr_str_from("metadata.version");
    m->finalized_features[0].max_version_level = 21;
    m->finalized_features[0].min_version_level = 1;
    m->zk_migration_ready = true;
}

/* variant 0: two topics (the second by id only where names may be null);
 * 1: null topics ("all topics", v1+); 2: no topics. */
static void build_metadata_request(gr_metadata_request *m, gr_arena *a, int16_t v, int variant)
{
    gr_metadata_request_init(m);
    if (variant == 1) {
        m->topics_count = -1;
    } else if (variant == 2) {
        m->topics_count = 0;
    } else {
        m->topics_count = 2;
        m->topics = alloc_items(a, 2, sizeof *m->topics);
        gr_metadata_request_topic_init(&m->topics[0]);
        m->topics[0].name = gr_str_from("orders");
        gr_metadata_request_topic_init(&m->topics[1]);
        m->topics[1].topic_id = uuid_of(0x40);
        m->topics[1].name = v >= 10 ? GR_STR_NULL : gr_str_from("payments");
    }
    m->allow_auto_topic_creation = false;
    m->include_cluster_authorized_operations = true;
    m->include_topic_authorized_operations = true;
}

static void build_metadata_response(gr_metadata_response *m, gr_arena *a, int16_t v)
{
    gr_metadata_response_init(m);
    m->throttle_time_ms = 17;
    m->brokers_count = 2;
    m->brokers = alloc_items(a, 2, sizeof *m->brokers);
    for (int i = 0; i < 2; i++) {
        gr_metadata_response_broker_init(&m->brokers[i]);
        m->brokers[i].node_id = i + 1;
        m->brokers[i].host = gr_str_from(i ? "b2.example" : "b1.example");
        m->brokers[i].port = 9092 + i;
    }
    m->brokers[1].rack = gr_str_from("rack-b"); /* brokers[0] keeps a null rack */
    m->cluster_id = gr_str_from("gregor-cluster");
    m->controller_id = 2;
    m->topics_count = 2;
    m->topics = alloc_items(a, 2, sizeof *m->topics);
    for (int t = 0; t < 2; t++) {
        gr_metadata_response_topic *topic = &m->topics[t];
        gr_metadata_response_topic_init(topic);
        topic->error_code = (int16_t)(t * 3);
        topic->name = gr_str_from(t ? "__consumer_offsets" : "orders");
        topic->topic_id = uuid_of((uint8_t)(0x10 * (t + 1)));
        topic->is_internal = t == 1;
        topic->topic_authorized_operations = 0x0df8;
        topic->partitions_count = t ? 0 : 2; /* an empty array too */
        if (t == 0)
            topic->partitions = alloc_items(a, 2, sizeof *topic->partitions);
        for (int p = 0; p < topic->partitions_count; p++) {
            gr_metadata_response_partition *part = &topic->partitions[p];
            gr_metadata_response_partition_init(part);
            part->error_code = (int16_t)p;
            part->partition_index = p;
            part->leader_id = p + 1;
            part->leader_epoch = 7 + p;
            part->replica_nodes_count = 3;
            part->replica_nodes = int32s(a, 3, 1);
            part->isr_nodes_count = 2 - p;
            part->isr_nodes = int32s(a, 2, 1);
            part->offline_replicas_count = 1;
            part->offline_replicas = int32s(a, 1, 3);
        }
    }
    if (v >= 12) /* a topic asked for by id that does not exist */
        m->topics[1].name = GR_STR_NULL;
    m->cluster_authorized_operations = 0x0abc;
}

/* ---- round trips ---- */

START_TEST(test_roundtrip_request_header)
{
    for (int16_t v = 0; v <= 2; v++) {
        for (int null_client = 0; null_client <= 1; null_client++) {
            gr_arena a;
            gr_arena_init(&a);
            gr_request_header m;
            build_request_header(&m, null_client);
            const gr_request_header *d = roundtrip(&gr_request_header_codec, &m, v, &a);
            ck_assert_int_eq(d->request_api_key, 3);
            ck_assert_int_eq(d->request_api_version, 12);
            ck_assert_int_eq(d->correlation_id, 0x01020304);
            if (v >= 1 && !null_client)
                ck_assert(str_eq(d->client_id, "console-producer"));
            else if (v >= 1)
                ck_assert_int_eq(d->client_id.len, -1);
            else
                ck_assert_int_eq(d->client_id.len, 0); /* absent in v0 */
            gr_arena_free(&a);
        }
    }
}
END_TEST

START_TEST(test_roundtrip_response_header)
{
    for (int16_t v = 0; v <= 1; v++) {
        gr_arena a;
        gr_arena_init(&a);
        gr_response_header m;
        gr_response_header_init(&m);
        m.correlation_id = -5;
        const gr_response_header *d = roundtrip(&gr_response_header_codec, &m, v, &a);
        ck_assert_int_eq(d->correlation_id, -5);
        ck_assert_uint_eq(gr_response_header_size(&m, v), v == 0 ? 4 : 5);
        gr_arena_free(&a);
    }
}
END_TEST

START_TEST(test_roundtrip_api_versions)
{
    for (int16_t v = 0; v <= 4; v++) {
        gr_arena a;
        gr_arena_init(&a);
        gr_api_versions_request req;
        gr_api_versions_request_init(&req);
        req.client_software_name = gr_str_from("kcat");
        req.client_software_version = gr_str_from("1.7.1");
        const gr_api_versions_request *dq = roundtrip(&gr_api_versions_request_codec, &req, v, &a);
        ck_assert(str_eq(dq->client_software_name, v >= 3 ? "kcat" : ""));
        ck_assert(str_eq(dq->client_software_version, v >= 3 ? "1.7.1" : ""));

        gr_api_versions_response resp;
        build_api_versions_response(&resp, &a);
        const gr_api_versions_response *d = roundtrip(&gr_api_versions_response_codec, &resp, v, &a);
        ck_assert_int_eq(d->error_code, 35);
        ck_assert_int_eq(d->api_keys_count, 3);
        ck_assert_int_eq(d->api_keys[2].api_key, 18);
        ck_assert_int_eq(d->api_keys[2].max_version, 12);
        ck_assert_int_eq(d->throttle_time_ms, v >= 1 ? 250 : 0);
        if (v >= 3) {
            ck_assert_int_eq(d->supported_features_count, 2);
            ck_assert(str_eq(d->supported_features[1].name, "kraft.version"));
            ck_assert_int_eq(d->supported_features[0].max_version, 21);
            ck_assert_int_eq(d->finalized_features_epoch, 42);
            ck_assert_int_eq(d->finalized_features_count, 1);
            ck_assert_int_eq(d->finalized_features[0].min_version_level, 1);
            ck_assert(d->zk_migration_ready);
        } else { /* tagged fields do not exist before v3: defaults */
            ck_assert_int_eq(d->supported_features_count, 0);
            ck_assert_int_eq(d->finalized_features_epoch, -1);
            ck_assert_int_eq(d->finalized_features_count, 0);
            ck_assert(!d->zk_migration_ready);
        }
        gr_arena_free(&a);
    }
}
END_TEST

START_TEST(test_roundtrip_metadata_request)
{
    for (int16_t v = 0; v <= 12; v++) {
        for (int variant = 0; variant <= 2; variant++) {
            if (variant == 1 && v < 1)
                continue; /* a null topic array only exists from v1 */
            gr_arena a;
            gr_arena_init(&a);
            gr_metadata_request m;
            build_metadata_request(&m, &a, v, variant);
            const gr_metadata_request *d = roundtrip(&gr_metadata_request_codec, &m, v, &a);
            ck_assert_int_eq(d->topics_count, variant == 0 ? 2 : variant == 1 ? -1 : 0);
            if (variant == 0) {
                ck_assert(str_eq(d->topics[0].name, "orders"));
                if (v >= 10) {
                    ck_assert_int_eq(d->topics[1].name.len, -1);
                    ck_assert_mem_eq(d->topics[1].topic_id.b, uuid_of(0x40).b, 16);
                } else {
                    ck_assert(str_eq(d->topics[1].name, "payments"));
                    ck_assert(gr_uuid_is_zero(&d->topics[1].topic_id));
                }
            }
            ck_assert(d->allow_auto_topic_creation == (v < 4)); /* default true */
            ck_assert(d->include_cluster_authorized_operations == (v >= 8 && v <= 10));
            ck_assert(d->include_topic_authorized_operations == (v >= 8));
            gr_arena_free(&a);
        }
    }
}
END_TEST

START_TEST(test_roundtrip_metadata_response)
{
    for (int16_t v = 0; v <= 12; v++) {
        gr_arena a;
        gr_arena_init(&a);
        gr_metadata_response m;
        build_metadata_response(&m, &a, v);
        const gr_metadata_response *d = roundtrip(&gr_metadata_response_codec, &m, v, &a);
        ck_assert_int_eq(d->throttle_time_ms, v >= 3 ? 17 : 0);
        ck_assert_int_eq(d->brokers_count, 2);
        ck_assert(str_eq(d->brokers[0].host, "b1.example"));
        ck_assert_int_eq(d->brokers[1].port, 9093);
        ck_assert_int_eq(d->brokers[0].rack.len, -1);
        ck_assert(v >= 1 ? str_eq(d->brokers[1].rack, "rack-b") : d->brokers[1].rack.len == -1);
        if (v >= 2)
            ck_assert(str_eq(d->cluster_id, "gregor-cluster"));
        else
            ck_assert_int_eq(d->cluster_id.len, -1);
        ck_assert_int_eq(d->controller_id, v >= 1 ? 2 : -1);
        ck_assert_int_eq(d->topics_count, 2);
        const gr_metadata_response_topic *t0 = &d->topics[0], *t1 = &d->topics[1];
        ck_assert(str_eq(t0->name, "orders"));
        ck_assert(v >= 12 ? t1->name.len == -1 : str_eq(t1->name, "__consumer_offsets"));
        ck_assert_int_eq(t1->error_code, 3);
        ck_assert(t1->is_internal == (v >= 1));
        if (v >= 10)
            ck_assert_mem_eq(t1->topic_id.b, uuid_of(0x20).b, 16);
        else
            ck_assert(gr_uuid_is_zero(&t1->topic_id));
        ck_assert_int_eq(t0->topic_authorized_operations, v >= 8 ? 0x0df8 : INT32_MIN);
        ck_assert_int_eq(t0->partitions_count, 2);
        ck_assert_int_eq(t1->partitions_count, 0);
        const gr_metadata_response_partition *p1 = &t0->partitions[1];
        ck_assert_int_eq(p1->partition_index, 1);
        ck_assert_int_eq(p1->leader_id, 2);
        ck_assert_int_eq(p1->leader_epoch, v >= 7 ? 8 : -1);
        ck_assert_int_eq(p1->replica_nodes_count, 3);
        ck_assert_int_eq(p1->replica_nodes[2], 3);
        ck_assert_int_eq(p1->isr_nodes_count, 1);
        ck_assert_int_eq(p1->isr_nodes[0], 1);
        ck_assert_int_eq(p1->offline_replicas_count, v >= 5 ? 1 : 0);
        if (v >= 5)
            ck_assert_int_eq(p1->offline_replicas[0], 3);
        ck_assert_int_eq(d->cluster_authorized_operations, v >= 8 && v <= 10 ? 0x0abc : INT32_MIN);
        gr_arena_free(&a);
    }
}
END_TEST

/* Tagged fields at their defaults are not written: an all-default v3
 * response is error code, empty array, throttle time, empty tag section. */
START_TEST(test_tagged_defaults_not_written)
{
    gr_api_versions_response m;
    gr_api_versions_response_init(&m);
    ck_assert_int_eq(m.finalized_features_epoch, -1);
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_api_versions_response_encode(&m, 3, &w), GR_OK);
    static const uint8_t want[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(w.len, sizeof want);
    ck_assert_mem_eq(w.p, want, sizeof want);
    gr_writer_free(&w);
}
END_TEST

/* ---- golden vectors, written by hand from the protocol specification ---- */

/* RequestHeader v2: ApiVersions v3, correlation id 7, client "rdkafka". */
static const uint8_t golden_request_header_v2[] = {
    0x00, 0x12,                         /* request_api_key 18 (ApiVersions) */
    0x00, 0x03,                         /* request_api_version 3 */
    0x00, 0x00, 0x00, 0x07,             /* correlation_id 7 */
    0x00, 0x07,                         /* client_id: classic int16 length 7 */
    'r', 'd', 'k', 'a', 'f', 'k', 'a',  /*   "rdkafka" */
    0x00,                               /* tagged fields: none */
};

/* ApiVersionsRequest v3. */
static const uint8_t golden_api_versions_request_v3[] = {
    0x0b,                                                  /* compact length 10 + 1 */
    'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a',      /* client_software_name */
    0x06,                                                  /* compact length 5 + 1 */
    '2', '.', '3', '.', '0',                               /* client_software_version */
    0x00,                                                  /* tagged fields: none */
};

/* ApiVersionsResponse v3 with two tagged fields. */
static const uint8_t golden_api_versions_response_v3[] = {
    0x00, 0x00,             /* error_code 0 */
    0x03,                   /* api_keys: compact count 2 + 1 */
    0x00, 0x03,             /*   [0] api_key 3 (Metadata) */
    0x00, 0x00,             /*       min_version 0 */
    0x00, 0x0c,             /*       max_version 12 */
    0x00,                   /*       tagged fields: none */
    0x00, 0x12,             /*   [1] api_key 18 (ApiVersions) */
    0x00, 0x00,             /*       min_version 0 */
    0x00, 0x04,             /*       max_version 4 */
    0x00,                   /*       tagged fields: none */
    0x00, 0x00, 0x00, 0x64, /* throttle_time_ms 100 */
    0x02,                   /* tagged fields: 2 */
    0x00,                   /*   tag 0: supported_features */
    0x17,                   /*   size 23 */
    0x02,                   /*     compact count 1 + 1 */
    0x11,                   /*     [0] name: compact length 16 + 1 */
    'm', 'e', 't', 'a', 'd', 'a', 't', 'a', '.', 'v', 'e', 'r', 's', 'i', 'o', 'n',
    0x00, 0x01,             /*         min_version 1 */
    0x00, 0x14,             /*         max_version 20 */
    0x00,                   /*         tagged fields: none */
    0x01,                   /*   tag 1: finalized_features_epoch */
    0x08,                   /*   size 8 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, /* epoch 5 */
};

/* MetadataRequest v12: one topic by name, one by id. */
static const uint8_t golden_metadata_request_v12[] = {
    0x03,                   /* topics: compact count 2 + 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* [0] topic_id: zero (by name) */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 'o', 'r', 'd', 'e', 'r', 's', /*     name: compact length 6 + 1, "orders" */
    0x00,                   /*     tagged fields: none */
    0x5e, 0x1f, 0x3a, 0x90, 0x2b, 0x44, 0x4c, 0x11, /* [1] topic_id */
    0x8a, 0x0d, 0x6e, 0x77, 0x01, 0x02, 0x03, 0x04,
    0x00,                   /*     name: null (compact 0) */
    0x00,                   /*     tagged fields: none */
    0x01,                   /* allow_auto_topic_creation true */
    0x01,                   /* include_topic_authorized_operations true */
    0x00,                   /* tagged fields: none */
};
static const uint8_t golden_topic_id[16] = {0x5e, 0x1f, 0x3a, 0x90, 0x2b, 0x44, 0x4c, 0x11,
                                            0x8a, 0x0d, 0x6e, 0x77, 0x01, 0x02, 0x03, 0x04};

/* MetadataResponse v12: two brokers, one topic with one partition. */
static const uint8_t golden_metadata_response_v12[] = {
    0x00, 0x00, 0x00, 0x00, /* throttle_time_ms 0 */
    0x03,                   /* brokers: compact count 2 + 1 */
    0x00, 0x00, 0x00, 0x01, /*   [0] node_id 1 */
    0x08, 'b', 'r', 'o', 'k', 'e', 'r', '1', /* host: compact length 7 + 1 */
    0x00, 0x00, 0x23, 0x84, /*       port 9092 */
    0x00,                   /*       rack: null */
    0x00,                   /*       tagged fields: none */
    0x00, 0x00, 0x00, 0x02, /*   [1] node_id 2 */
    0x08, 'b', 'r', 'o', 'k', 'e', 'r', '2', /* host */
    0x00, 0x00, 0x23, 0x85, /*       port 9093 */
    0x07, 'r', 'a', 'c', 'k', '-', 'b', /* rack: compact length 6 + 1 */
    0x00,                   /*       tagged fields: none */
    0x0f,                   /* cluster_id: compact length 14 + 1 */
    'g', 'r', 'e', 'g', 'o', 'r', '-', 'c', 'l', 'u', 's', 't', 'e', 'r',
    0x00, 0x00, 0x00, 0x01, /* controller_id 1 */
    0x02,                   /* topics: compact count 1 + 1 */
    0x00, 0x00,             /*   [0] error_code 0 */
    0x07, 'o', 'r', 'd', 'e', 'r', 's', /* name */
    0x5e, 0x1f, 0x3a, 0x90, 0x2b, 0x44, 0x4c, 0x11, /* topic_id */
    0x8a, 0x0d, 0x6e, 0x77, 0x01, 0x02, 0x03, 0x04,
    0x00,                   /*       is_internal false */
    0x02,                   /*       partitions: compact count 1 + 1 */
    0x00, 0x00,             /*         [0] error_code 0 */
    0x00, 0x00, 0x00, 0x00, /*             partition_index 0 */
    0x00, 0x00, 0x00, 0x01, /*             leader_id 1 */
    0x00, 0x00, 0x00, 0x05, /*             leader_epoch 5 */
    0x03,                   /*             replica_nodes: compact count 2 + 1 */
    0x00, 0x00, 0x00, 0x01, /*               1 */
    0x00, 0x00, 0x00, 0x02, /*               2 */
    0x02,                   /*             isr_nodes: compact count 1 + 1 */
    0x00, 0x00, 0x00, 0x01, /*               1 */
    0x02,                   /*             offline_replicas: compact count 1 + 1 */
    0x00, 0x00, 0x00, 0x02, /*               2 */
    0x00,                   /*             tagged fields: none */
    0x00, 0x00, 0x00, 0xf8, /*       topic_authorized_operations 248 */
    0x00,                   /*       tagged fields: none */
    0x00,                   /* tagged fields: none */
};

/* Encodes with c at v and compares with the golden bytes. */
static void expect_encoding(const codec *c, const void *m, int16_t v, const uint8_t *want,
                            size_t want_len)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(c->encode(m, v, &w), GR_OK);
    ck_assert_uint_eq(w.len, want_len);
    ck_assert_mem_eq(w.p, want, want_len);
    ck_assert_uint_eq(c->size(m, v), want_len);
    gr_writer_free(&w);
}

START_TEST(test_golden_request_header_v2)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_request_header h;
    size_t used;
    ck_assert_int_eq(decode_exact(&gr_request_header_codec, golden_request_header_v2,
                                  sizeof golden_request_header_v2, 2, &h, &a, &used),
                     GR_OK);
    ck_assert_uint_eq(used, sizeof golden_request_header_v2);
    ck_assert_int_eq(h.request_api_key, GR_API_API_VERSIONS);
    ck_assert_int_eq(h.request_api_version, 3);
    ck_assert_int_eq(h.correlation_id, 7);
    ck_assert(str_eq(h.client_id, "rdkafka"));

    gr_request_header_init(&h);
    h.request_api_key = 18;
    h.request_api_version = 3;
    h.correlation_id = 7;
    h.client_id = gr_str_from("rdkafka");
    expect_encoding(&gr_request_header_codec, &h, 2, golden_request_header_v2,
                    sizeof golden_request_header_v2);
    /* v1 is the same minus the tagged-field section. */
    expect_encoding(&gr_request_header_codec, &h, 1, golden_request_header_v2,
                    sizeof golden_request_header_v2 - 1);
    gr_arena_free(&a);
}
END_TEST

START_TEST(test_golden_api_versions_v3)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_api_versions_request req;
    ck_assert_int_eq(decode_exact(&gr_api_versions_request_codec, golden_api_versions_request_v3,
                                  sizeof golden_api_versions_request_v3, 3, &req, &a, NULL),
                     GR_OK);
    ck_assert(str_eq(req.client_software_name, "librdkafka"));
    ck_assert(str_eq(req.client_software_version, "2.3.0"));
    gr_api_versions_request_init(&req);
    req.client_software_name = gr_str_from("librdkafka");
    req.client_software_version = gr_str_from("2.3.0");
    expect_encoding(&gr_api_versions_request_codec, &req, 3, golden_api_versions_request_v3,
                    sizeof golden_api_versions_request_v3);

    gr_api_versions_response resp;
    ck_assert_int_eq(decode_exact(&gr_api_versions_response_codec, golden_api_versions_response_v3,
                                  sizeof golden_api_versions_response_v3, 3, &resp, &a, NULL),
                     GR_OK);
    ck_assert_int_eq(resp.error_code, 0);
    ck_assert_int_eq(resp.api_keys_count, 2);
    ck_assert_int_eq(resp.api_keys[0].api_key, 3);
    ck_assert_int_eq(resp.api_keys[0].max_version, 12);
    ck_assert_int_eq(resp.api_keys[1].api_key, 18);
    ck_assert_int_eq(resp.api_keys[1].max_version, 4);
    ck_assert_int_eq(resp.throttle_time_ms, 100);
    ck_assert_int_eq(resp.supported_features_count, 1);
    ck_assert(str_eq(resp.supported_features[0].name, "metadata.version"));
    ck_assert_int_eq(resp.supported_features[0].min_version, 1);
    ck_assert_int_eq(resp.supported_features[0].max_version, 20);
    ck_assert_int_eq(resp.finalized_features_epoch, 5);
    ck_assert_int_eq(resp.finalized_features_count, 0); /* absent tag: default */
    ck_assert(!resp.zk_migration_ready);

    gr_api_versions_response_api_version keys[2] = {{3, 0, 12}, {18, 0, 4}};
    gr_api_versions_response_supported_feature_key feature = {gr_str_from("metadata.version"), 1, 20};
    gr_api_versions_response_init(&resp);
    resp.api_keys = keys;
    resp.api_keys_count = 2;
    resp.throttle_time_ms = 100;
    resp.supported_features = &feature;
    resp.supported_features_count = 1;
    resp.finalized_features_epoch = 5;
    expect_encoding(&gr_api_versions_response_codec, &resp, 3, golden_api_versions_response_v3,
                    sizeof golden_api_versions_response_v3);
    gr_arena_free(&a);
}
END_TEST

START_TEST(test_golden_metadata_v12)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_metadata_request req;
    ck_assert_int_eq(decode_exact(&gr_metadata_request_codec, golden_metadata_request_v12,
                                  sizeof golden_metadata_request_v12, 12, &req, &a, NULL),
                     GR_OK);
    ck_assert_int_eq(req.topics_count, 2);
    ck_assert(gr_uuid_is_zero(&req.topics[0].topic_id));
    ck_assert(str_eq(req.topics[0].name, "orders"));
    ck_assert_mem_eq(req.topics[1].topic_id.b, golden_topic_id, 16);
    ck_assert_int_eq(req.topics[1].name.len, -1);
    ck_assert(req.allow_auto_topic_creation);
    ck_assert(!req.include_cluster_authorized_operations);
    ck_assert(req.include_topic_authorized_operations);

    gr_metadata_request_topic topics[2];
    gr_metadata_request_topic_init(&topics[0]);
    topics[0].name = gr_str_from("orders");
    gr_metadata_request_topic_init(&topics[1]);
    memcpy(topics[1].topic_id.b, golden_topic_id, 16);
    topics[1].name = GR_STR_NULL;
    gr_metadata_request_init(&req);
    req.topics = topics;
    req.topics_count = 2;
    req.include_topic_authorized_operations = true;
    expect_encoding(&gr_metadata_request_codec, &req, 12, golden_metadata_request_v12,
                    sizeof golden_metadata_request_v12);

    gr_metadata_response resp;
    ck_assert_int_eq(decode_exact(&gr_metadata_response_codec, golden_metadata_response_v12,
                                  sizeof golden_metadata_response_v12, 12, &resp, &a, NULL),
                     GR_OK);
    ck_assert_int_eq(resp.throttle_time_ms, 0);
    ck_assert_int_eq(resp.brokers_count, 2);
    ck_assert_int_eq(resp.brokers[0].node_id, 1);
    ck_assert(str_eq(resp.brokers[0].host, "broker1"));
    ck_assert_int_eq(resp.brokers[0].port, 9092);
    ck_assert_int_eq(resp.brokers[0].rack.len, -1);
    ck_assert(str_eq(resp.brokers[1].rack, "rack-b"));
    ck_assert(str_eq(resp.cluster_id, "gregor-cluster"));
    ck_assert_int_eq(resp.controller_id, 1);
    ck_assert_int_eq(resp.topics_count, 1);
    const gr_metadata_response_topic *t = &resp.topics[0];
    ck_assert(str_eq(t->name, "orders"));
    ck_assert_mem_eq(t->topic_id.b, golden_topic_id, 16);
    ck_assert(!t->is_internal);
    ck_assert_int_eq(t->topic_authorized_operations, 248);
    ck_assert_int_eq(t->partitions_count, 1);
    const gr_metadata_response_partition *p = &t->partitions[0];
    ck_assert_int_eq(p->leader_id, 1);
    ck_assert_int_eq(p->leader_epoch, 5);
    ck_assert_int_eq(p->replica_nodes_count, 2);
    ck_assert_int_eq(p->replica_nodes[1], 2);
    ck_assert_int_eq(p->isr_nodes_count, 1);
    ck_assert_int_eq(p->offline_replicas_count, 1);
    ck_assert_int_eq(p->offline_replicas[0], 2);
    ck_assert_int_eq(resp.cluster_authorized_operations, INT32_MIN); /* not in v12 */

    int32_t replicas[] = {1, 2}, isr[] = {1}, offline[] = {2};
    gr_metadata_response_partition part;
    gr_metadata_response_partition_init(&part);
    part.leader_id = 1;
    part.leader_epoch = 5;
    part.replica_nodes = replicas;
    part.replica_nodes_count = 2;
    part.isr_nodes = isr;
    part.isr_nodes_count = 1;
    part.offline_replicas = offline;
    part.offline_replicas_count = 1;
    gr_metadata_response_topic topic;
    gr_metadata_response_topic_init(&topic);
    topic.name = gr_str_from("orders");
    memcpy(topic.topic_id.b, golden_topic_id, 16);
    topic.partitions = &part;
    topic.partitions_count = 1;
    topic.topic_authorized_operations = 248;
    gr_metadata_response_broker brokers[2];
    gr_metadata_response_broker_init(&brokers[0]);
    brokers[0].node_id = 1;
    brokers[0].host = gr_str_from("broker1");
    brokers[0].port = 9092;
    gr_metadata_response_broker_init(&brokers[1]);
    brokers[1].node_id = 2;
    brokers[1].host = gr_str_from("broker2");
    brokers[1].port = 9093;
    brokers[1].rack = gr_str_from("rack-b");
    gr_metadata_response_init(&resp);
    resp.brokers = brokers;
    resp.brokers_count = 2;
    resp.cluster_id = gr_str_from("gregor-cluster");
    resp.controller_id = 1;
    resp.topics = &topic;
    resp.topics_count = 1;
    expect_encoding(&gr_metadata_response_codec, &resp, 12, golden_metadata_response_v12,
                    sizeof golden_metadata_response_v12);
    gr_arena_free(&a);
}
END_TEST

/* ---- hostile input ---- */

static const struct {
    const codec *c;
    int16_t version;
    const uint8_t *bytes;
    size_t len;
} goldens[] = {
    {&gr_request_header_codec, 2, golden_request_header_v2, sizeof golden_request_header_v2},
    {&gr_api_versions_request_codec, 3, golden_api_versions_request_v3,
     sizeof golden_api_versions_request_v3},
    {&gr_api_versions_response_codec, 3, golden_api_versions_response_v3,
     sizeof golden_api_versions_response_v3},
    {&gr_metadata_request_codec, 12, golden_metadata_request_v12,
     sizeof golden_metadata_request_v12},
    {&gr_metadata_response_codec, 12, golden_metadata_response_v12,
     sizeof golden_metadata_response_v12},
};

START_TEST(test_truncation_everywhere)
{
    for (size_t g = 0; g < sizeof goldens / sizeof goldens[0]; g++) {
        for (size_t len = 0; len < goldens[g].len; len++) {
            gr_arena a;
            gr_arena_init(&a);
            void *m = gr_arena_alloc(&a, goldens[g].c->struct_size);
            int err = decode_exact(goldens[g].c, goldens[g].bytes, len, goldens[g].version, m, &a,
                                   NULL);
            ck_assert_msg(err == GR_ERR_TRUNCATED, "%s cut at %zu: %s", goldens[g].c->name, len,
                          gr_err_str(err));
            gr_arena_free(&a);
        }
    }
}
END_TEST

/* Decodes bytes as the given request/response type; returns the result and
 * leaves the arena's total in *arena_total. */
static int decode_bytes(const codec *c, int16_t v, const uint8_t *bytes, size_t len,
                        size_t *arena_total)
{
    gr_arena a;
    gr_arena_init(&a);
    void *m = gr_arena_alloc(&a, c->struct_size);
    size_t before = a.total;
    int err = decode_exact(c, bytes, len, v, m, &a, NULL);
    if (arena_total)
        *arena_total = a.total - before;
    gr_arena_free(&a);
    return err;
}

START_TEST(test_huge_counts)
{
    size_t total;
    /* MetadataResponse v0: brokers count INT32_MAX, nothing after it. */
    static const uint8_t classic[] = {0x7f, 0xff, 0xff, 0xff, 0x00, 0x00};
    ck_assert_int_eq(decode_bytes(&gr_metadata_response_codec, 0, classic, sizeof classic, &total),
                     GR_ERR_TRUNCATED);
    ck_assert_uint_lt(total, 1024);
    /* Same in compact form (v9): uvarint 0x80000000 = count INT32_MAX. */
    static const uint8_t compact[] = {0x00, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00};
    ck_assert_int_eq(decode_bytes(&gr_metadata_response_codec, 9, compact, sizeof compact, &total),
                     GR_ERR_TRUNCATED);
    ck_assert_uint_lt(total, 1024);
    /* MetadataRequest v0 with a plausible-looking but too large topic count:
     * 1000 topics need at least 2000 bytes. */
    uint8_t req[64] = {0x00, 0x00, 0x03, 0xe8};
    ck_assert_int_eq(decode_bytes(&gr_metadata_request_codec, 0, req, sizeof req, &total),
                     GR_ERR_TRUNCATED);
    ck_assert_uint_lt(total, 1024);
    /* An int32 array element is 4 bytes: 5 replicas cannot fit in 19 bytes. */
    static const uint8_t part[] = {
        0x00, 0x00, 0x00, 0x00,  /* brokers: none */
        0x00, 0x00, 0x00, 0x01,  /* topics: 1 */
        0x00, 0x00, 0x00, 0x01, 't', /* error_code, name "t" */
        0x00, 0x00, 0x00, 0x01,  /* partitions: 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* error, index, leader */
        0x00, 0x00, 0x00, 0x05,  /* replica_nodes: 5 */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    ck_assert_int_eq(decode_bytes(&gr_metadata_response_codec, 0, part, sizeof part, &total),
                     GR_ERR_TRUNCATED);
    /* A huge tagged-field count. */
    static const uint8_t tags[] = {0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f};
    ck_assert_int_eq(decode_bytes(&gr_api_versions_request_codec, 3, tags, sizeof tags, NULL),
                     GR_ERR_TRUNCATED);
}
END_TEST

START_TEST(test_bad_lengths)
{
    /* RequestHeader v1 with client_id length -2. */
    static const uint8_t neg_string[] = {0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                                         0xff, 0xfe, 'x', 'y'};
    ck_assert_int_eq(decode_bytes(&gr_request_header_codec, 1, neg_string, sizeof neg_string, NULL),
                     GR_ERR_MALFORMED);
    /* MetadataResponse v0 with brokers count -2. */
    static const uint8_t neg_count[] = {0xff, 0xff, 0xff, 0xfe, 0x00, 0x00, 0x00, 0x00};
    ck_assert_int_eq(decode_bytes(&gr_metadata_response_codec, 0, neg_count, sizeof neg_count, NULL),
                     GR_ERR_MALFORMED);
    /* Compact array count uvarint 0xffffffff: count 2^32 - 2 does not fit an int32. */
    static const uint8_t overflow[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00};
    ck_assert_int_eq(decode_bytes(&gr_metadata_request_codec, 12, overflow, sizeof overflow, NULL),
                     GR_ERR_MALFORMED);
    /* A uvarint longer than 5 bytes. */
    static const uint8_t long_varint[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00};
    ck_assert_int_eq(
        decode_bytes(&gr_metadata_request_codec, 12, long_varint, sizeof long_varint, NULL),
        GR_ERR_MALFORMED);
    /* A compact string longer than 32767 bytes (uvarint 40001). */
    uint8_t *big = calloc(1, 40010);
    ck_assert_ptr_nonnull(big);
    big[0] = 0xc1;
    big[1] = 0xb8;
    big[2] = 0x02;
    ck_assert_int_eq(decode_bytes(&gr_api_versions_request_codec, 3, big, 40010, NULL),
                     GR_ERR_MALFORMED);
    free(big);
    /* A string length running past the end. */
    static const uint8_t past_end[] = {0x0b, 'k', 'c', 'a', 't'};
    ck_assert_int_eq(
        decode_bytes(&gr_api_versions_request_codec, 3, past_end, sizeof past_end, NULL),
        GR_ERR_TRUNCATED);
}
END_TEST

START_TEST(test_null_where_not_nullable)
{
    /* MetadataRequest v0: a null topic array only means "all" from v1. */
    static const uint8_t v0_null[] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(decode_bytes(&gr_metadata_request_codec, 0, v0_null, sizeof v0_null, NULL),
                     GR_ERR_MALFORMED);
    ck_assert_int_eq(decode_bytes(&gr_metadata_request_codec, 1, v0_null, sizeof v0_null, NULL),
                     GR_OK);
    /* MetadataRequest v9: a null topic name (nullable from v10). */
    static const uint8_t v9_null_name[] = {0x02, 0x00, 0x00, 0x01, 0x00, 0x00};
    ck_assert_int_eq(
        decode_bytes(&gr_metadata_request_codec, 9, v9_null_name, sizeof v9_null_name, NULL),
        GR_ERR_MALFORMED);
    /* MetadataResponse v1: a broker with a null host. */
    static const uint8_t null_host[] = {
        0x00, 0x00, 0x00, 0x01, /* brokers: 1 */
        0x00, 0x00, 0x00, 0x01, /* node_id */
        0xff, 0xff,             /* host: null */
        0x00, 0x00, 0x23, 0x84, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    };
    ck_assert_int_eq(decode_bytes(&gr_metadata_response_codec, 1, null_host, sizeof null_host, NULL),
                     GR_ERR_MALFORMED);
}
END_TEST

START_TEST(test_unknown_tags_skipped)
{
    static const uint8_t req[] = {
        0x05, 'k', 'c', 'a', 't',  /* client_software_name */
        0x02, '1',                 /* client_software_version */
        0x02,                      /* tagged fields: 2 */
        0x63, 0x03, 0xaa, 0xbb, 0xcc, /* tag 99, 3 bytes */
        0xe8, 0x07, 0x00,          /* tag 1000, empty */
    };
    gr_arena a;
    gr_arena_init(&a);
    gr_api_versions_request m;
    size_t used;
    ck_assert_int_eq(decode_exact(&gr_api_versions_request_codec, req, sizeof req, 3, &m, &a, &used),
                     GR_OK);
    ck_assert_uint_eq(used, sizeof req);
    ck_assert(str_eq(m.client_software_name, "kcat"));
    ck_assert(str_eq(m.client_software_version, "1"));
    /* Re-encoding drops them. */
    ck_assert_uint_eq(gr_api_versions_request_size(&m, 3), 8);

    /* An unknown tag inside a nested struct, next to a known top-level one. */
    static const uint8_t resp[] = {
        0x00, 0x00,                   /* error_code */
        0x02,                         /* api_keys: 1 */
        0x00, 0x01, 0x00, 0x04, 0x00, 0x0b, /* Fetch 4-11 */
        0x01, 0x07, 0x01, 0x00,       /*   tagged: tag 7, 1 byte */
        0x00, 0x00, 0x00, 0x00,       /* throttle_time_ms */
        0x01,                         /* tagged fields: 1 */
        0x03, 0x01, 0x01,             /*   tag 3 (zk_migration_ready) = true */
    };
    gr_api_versions_response r;
    ck_assert_int_eq(
        decode_exact(&gr_api_versions_response_codec, resp, sizeof resp, 4, &r, &a, &used), GR_OK);
    ck_assert_uint_eq(used, sizeof resp);
    ck_assert_int_eq(r.api_keys_count, 1);
    ck_assert_int_eq(r.api_keys[0].max_version, 11);
    ck_assert(r.zk_migration_ready);

    /* A known tag whose declared size is too small for its value. */
    static const uint8_t short_tag[] = {
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x01, 0x04, 0x00, 0x00, 0x00, 0x05, /* tag 1 (an int64) in 4 bytes */
    };
    ck_assert_int_eq(
        decode_exact(&gr_api_versions_response_codec, short_tag, sizeof short_tag, 3, &r, &a, NULL),
        GR_ERR_TRUNCATED);
    gr_arena_free(&a);
}
END_TEST

START_TEST(test_versions)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_metadata_request m;
    gr_reader r;
    static const uint8_t empty[] = {0x00, 0x00, 0x00, 0x00};
    gr_reader_init(&r, empty, sizeof empty);
    ck_assert_int_eq(gr_metadata_request_decode(&m, &r, 13, &a), GR_ERR_VERSION);
    ck_assert_int_eq(gr_metadata_request_decode(&m, &r, -1, &a), GR_ERR_VERSION);
    gr_reader_init(&r, empty, sizeof empty);
    ck_assert_int_eq(gr_api_versions_request_decode(&(gr_api_versions_request){0}, &r, 5, &a),
                     GR_ERR_VERSION);
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_metadata_request_init(&m);
    ck_assert_int_eq(gr_metadata_request_encode(&m, 13, &w), GR_ERR_VERSION);
    ck_assert_uint_eq(w.len, 0);
    gr_response_header h;
    gr_reader_init(&r, empty, sizeof empty);
    ck_assert_int_eq(gr_response_header_decode(&h, &r, 2, &a), GR_ERR_VERSION);

    void *out = NULL;
    gr_reader_init(&r, empty, sizeof empty);
    ck_assert_int_eq(gr_request_decode(999, 3, &r, &a, &out), GR_ERR_VERSION); /* no such API */
    ck_assert_ptr_null(out);
    ck_assert_int_eq(gr_request_decode(GR_API_METADATA, 13, &r, &a, &out), GR_ERR_VERSION);
    ck_assert_ptr_null(out);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

/* ---- encoding refusals ---- */

START_TEST(test_encode_refusals)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_write_i32(&w, 99); /* something already in the writer stays */

    gr_metadata_request m;
    gr_metadata_request_init(&m);
    m.topics_count = -1; /* null: not in v0 */
    ck_assert_int_eq(gr_metadata_request_encode(&m, 0, &w), GR_ERR_MALFORMED);
    ck_assert_uint_eq(w.len, 4);
    ck_assert_int_eq(gr_metadata_request_encode(&m, 1, &w), GR_OK);
    w.len = 4;
    m.topics_count = -2;
    ck_assert_int_eq(gr_metadata_request_encode(&m, 5, &w), GR_ERR_MALFORMED);
    m.topics_count = 1; /* with no items */
    ck_assert_int_eq(gr_metadata_request_encode(&m, 5, &w), GR_ERR_MALFORMED);
    gr_metadata_request_topic t;
    gr_metadata_request_topic_init(&t);
    t.name = GR_STR_NULL; /* a null name is v10+ */
    m.topics = &t;
    ck_assert_int_eq(gr_metadata_request_encode(&m, 9, &w), GR_ERR_MALFORMED);
    ck_assert_uint_eq(w.len, 4);
    ck_assert_int_eq(gr_metadata_request_encode(&m, 10, &w), GR_OK);
    w.len = 4;

    /* Strings longer than 32767 bytes, in both spellings. */
    char *big = malloc(40000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 40000);
    gr_request_header h;
    gr_request_header_init(&h);
    h.client_id = (gr_str){big, 32768};
    ck_assert_int_eq(gr_request_header_encode(&h, 1, &w), GR_ERR_MALFORMED);
    h.client_id.len = 32767;
    ck_assert_int_eq(gr_request_header_encode(&h, 1, &w), GR_OK);
    ck_assert_uint_eq(w.len, 4 + 8 + 2 + 32767);
    w.len = 4;
    gr_api_versions_request av;
    gr_api_versions_request_init(&av);
    av.client_software_name = (gr_str){big, 40000};
    ck_assert_int_eq(gr_api_versions_request_encode(&av, 3, &w), GR_ERR_MALFORMED);
    av.client_software_name = GR_STR_NULL; /* never nullable */
    ck_assert_int_eq(gr_api_versions_request_encode(&av, 3, &w), GR_ERR_MALFORMED);
    ck_assert_uint_eq(w.len, 4);
    free(big);

    gr_metadata_response resp;
    gr_metadata_response_init(&resp);
    gr_metadata_response_broker b;
    gr_metadata_response_broker_init(&b);
    b.host = GR_STR_NULL;
    resp.brokers = &b;
    resp.brokers_count = 1;
    ck_assert_int_eq(gr_metadata_response_encode(&resp, 12, &w), GR_ERR_MALFORMED);
    ck_assert_uint_eq(w.len, 4);
    gr_writer_free(&w);
}
END_TEST

/* ---- defaults, API table, dispatch ---- */

START_TEST(test_defaults)
{
    gr_metadata_response m;
    gr_metadata_response_init(&m);
    ck_assert_int_eq(m.controller_id, -1);
    ck_assert_int_eq(m.cluster_id.len, -1);
    ck_assert_int_eq(m.cluster_authorized_operations, INT32_MIN);
    ck_assert_int_eq(m.brokers_count, 0);
    gr_metadata_response_broker b;
    gr_metadata_response_broker_init(&b);
    ck_assert_int_eq(b.rack.len, -1);
    ck_assert_int_eq(b.host.len, 0);
    gr_metadata_response_partition p;
    gr_metadata_response_partition_init(&p);
    ck_assert_int_eq(p.leader_epoch, -1);
    gr_metadata_response_topic t;
    gr_metadata_response_topic_init(&t);
    ck_assert_int_eq(t.topic_authorized_operations, INT32_MIN);
    gr_metadata_request r;
    gr_metadata_request_init(&r);
    ck_assert(r.allow_auto_topic_creation);
    gr_request_header h;
    gr_request_header_init(&h);
    ck_assert_int_eq(h.client_id.len, 0);

    /* Decoding an old version leaves the newer fields at their defaults. */
    static const uint8_t v0[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    gr_arena a;
    gr_arena_init(&a);
    gr_reader rd;
    gr_reader_init(&rd, v0, sizeof v0);
    m.controller_id = 5;
    ck_assert_int_eq(gr_metadata_response_decode(&m, &rd, 0, &a), GR_OK);
    ck_assert_int_eq(m.controller_id, -1);
    ck_assert_int_eq(m.cluster_id.len, -1);
    gr_arena_free(&a);
}
END_TEST

START_TEST(test_api_table)
{
    const gr_api_info *md = gr_api_lookup(GR_API_METADATA);
    ck_assert_ptr_nonnull(md);
    ck_assert_int_eq(md->key, 3);
    ck_assert_str_eq(md->name, "Metadata");
    ck_assert_int_eq(md->min_version, 0);
    ck_assert_int_eq(md->max_version, 12);
    ck_assert_int_eq(md->flexible_min, 9);
    const gr_api_info *av = gr_api_lookup(GR_API_API_VERSIONS);
    ck_assert_ptr_nonnull(av);
    ck_assert_str_eq(av->name, "ApiVersions");
    ck_assert_int_eq(av->max_version, 4);
    ck_assert_int_eq(av->flexible_min, 3);
    ck_assert_ptr_null(gr_api_lookup(-1));
    ck_assert_ptr_null(gr_api_lookup(1000));

    ck_assert_int_eq(gr_request_header_version(GR_API_API_VERSIONS, 2), 1);
    ck_assert_int_eq(gr_request_header_version(GR_API_API_VERSIONS, 3), 2);
    ck_assert_int_eq(gr_request_header_version(GR_API_API_VERSIONS, 9), 2);
    ck_assert_int_eq(gr_request_header_version(GR_API_METADATA, 8), 1);
    ck_assert_int_eq(gr_request_header_version(GR_API_METADATA, 9), 2);
    ck_assert_int_eq(gr_response_header_version(GR_API_API_VERSIONS, 3), 0);
    ck_assert_int_eq(gr_response_header_version(GR_API_METADATA, 8), 0);
    ck_assert_int_eq(gr_response_header_version(GR_API_METADATA, 12), 1);
    ck_assert_int_eq(gr_request_header_version(999, 0), -1);
    ck_assert_int_eq(gr_response_header_version(999, 0), -1);
}
END_TEST

START_TEST(test_generic_dispatch)
{
    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, golden_metadata_request_v12, sizeof golden_metadata_request_v12);
    void *out = NULL;
    ck_assert_int_eq(gr_request_decode(GR_API_METADATA, 12, &r, &a, &out), GR_OK);
    ck_assert_ptr_nonnull(out);
    const gr_metadata_request *m = out;
    ck_assert_int_eq(m->topics_count, 2);
    ck_assert_uint_eq(gr_request_size(GR_API_METADATA, 12, out), sizeof golden_metadata_request_v12);
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_request_encode(GR_API_METADATA, 12, out, &w), GR_OK);
    ck_assert_mem_eq(w.p, golden_metadata_request_v12, sizeof golden_metadata_request_v12);
    gr_writer_free(&w);

    gr_reader_init(&r, golden_api_versions_response_v3, sizeof golden_api_versions_response_v3);
    ck_assert_int_eq(gr_response_decode(GR_API_API_VERSIONS, 3, &r, &a, &out), GR_OK);
    ck_assert_int_eq(((const gr_api_versions_response *)out)->throttle_time_ms, 100);
    ck_assert_uint_eq(gr_response_size(GR_API_API_VERSIONS, 3, out),
                      sizeof golden_api_versions_response_v3);
    ck_assert_uint_eq(gr_request_size(77, 0, out), 0);
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_response_encode(77, 0, out, &w), GR_ERR_VERSION);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_checked_fixture(tc, NULL, free_inputs);
    tcase_add_test(tc, test_roundtrip_request_header);
    tcase_add_test(tc, test_roundtrip_response_header);
    tcase_add_test(tc, test_roundtrip_api_versions);
    tcase_add_test(tc, test_roundtrip_metadata_request);
    tcase_add_test(tc, test_roundtrip_metadata_response);
    tcase_add_test(tc, test_tagged_defaults_not_written);
    suite_add_tcase(s, tc);

    tc = tcase_create("golden");
    tcase_add_checked_fixture(tc, NULL, free_inputs);
    tcase_add_test(tc, test_golden_request_header_v2);
    tcase_add_test(tc, test_golden_api_versions_v3);
    tcase_add_test(tc, test_golden_metadata_v12);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, NULL, free_inputs);
    tcase_add_test(tc, test_truncation_everywhere);
    tcase_add_test(tc, test_huge_counts);
    tcase_add_test(tc, test_bad_lengths);
    tcase_add_test(tc, test_null_where_not_nullable);
    tcase_add_test(tc, test_unknown_tags_skipped);
    tcase_add_test(tc, test_versions);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_checked_fixture(tc, NULL, free_inputs);
    tcase_add_test(tc, test_encode_refusals);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_api_table);
    tcase_add_test(tc, test_generic_dispatch);
    suite_add_tcase(s, tc);
    return s;
}
