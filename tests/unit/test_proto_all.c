/*
 * test_proto_all.c - every message of proto/schema, generically.
 *
 *   - round trips: for every message type of the generated table
 *     (proto/messages_test.h), every version it has and many seeds, a random
 *     message is encoded (its size() must be the bytes written), decoded from
 *     exactly those bytes (all of them consumed) and encoded again to the same
 *     bytes. The same for the framed metadata log records;
 *   - golden vectors written by hand from the protocol specification for the
 *     messages that matter most: a flexible Produce request, a Fetch response
 *     partition carrying records, a metadata TopicRecord, each decoded and
 *     checked field by field, and re-created by encoding.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "common/buf.h"
#include "proto/messages.h"
#include "proto/messages_test.h"
#include "tests/unit/suites.h"

#define SEEDS 20

/* Decodes from a heap copy of exactly len bytes, so that the sanitizers see
 * any read past the end. The copy is freed by the caller (*copy). */
static int decode_copy(const gr_message_type *t, const uint8_t *bytes, size_t len, int16_t v,
                       void *out, gr_arena *a, size_t *consumed, uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    if (len)
        memcpy(*copy, bytes, len);
    gr_reader r;
    gr_reader_init(&r, *copy, len);
    int err = t->decode(out, &r, v, a);
    *consumed = r.pos;
    return err;
}

/* One round trip of one random message. */
static void roundtrip_one(const gr_message_type *t, int16_t v, uint64_t seed)
{
    char what[128];
    snprintf(what, sizeof what, "%s v%d seed %llu", t->name, v, (unsigned long long)seed);
    gr_arena a;
    gr_arena_init(&a);
    void *m = gr_arena_alloc(&a, t->struct_size);
    void *again = gr_arena_alloc(&a, t->struct_size);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(again);
    uint64_t rng = seed * 0x100000001b3u + (uint64_t)v;
    t->fill_random(m, v, &a, &rng);

    gr_writer w1, w2;
    gr_writer_init(&w1, 0);
    gr_writer_init(&w2, 0);
    int err = t->encode(m, v, &w1);
    ck_assert_msg(err == GR_OK, "%s: encode: %s", what, gr_err_str(err));
    ck_assert_msg(t->size(m, v) == w1.len, "%s: size %zu, wrote %zu", what, t->size(m, v),
                  w1.len);

    uint8_t *copy;
    size_t consumed;
    err = decode_copy(t, w1.p, w1.len, v, again, &a, &consumed, &copy);
    ck_assert_msg(err == GR_OK, "%s: decode: %s", what, gr_err_str(err));
    ck_assert_msg(consumed == w1.len, "%s: decode consumed %zu of %zu", what, consumed, w1.len);
    ck_assert_msg(t->size(again, v) == w1.len, "%s: size after decode", what);
    err = t->encode(again, v, &w2);
    ck_assert_msg(err == GR_OK, "%s: re-encode: %s", what, gr_err_str(err));
    ck_assert_msg(w2.len == w1.len && (w1.len == 0 || memcmp(w1.p, w2.p, w1.len) == 0),
                  "%s: re-encoded bytes differ", what);

    /* Every field takes at least one byte, so no proper prefix decodes. */
    if (seed == 0) {
        for (size_t cut = 0; cut < w1.len; cut++) {
            uint8_t *c2;
            size_t used;
            err = decode_copy(t, w1.p, cut, v, again, &a, &used, &c2);
            free(c2);
            ck_assert_msg(err == GR_ERR_TRUNCATED || err == GR_ERR_MALFORMED,
                          "%s: a %zu-byte prefix of %zu gave %d", what, cut, w1.len, err);
        }
    }
    free(copy);
    gr_writer_free(&w1);
    gr_writer_free(&w2);
    gr_arena_free(&a);
}

START_TEST(test_roundtrip_every_message)
{
    const gr_message_type *t = &gr_message_types[_i];
    ck_assert_int_le(t->min_version, t->max_version);
    for (int16_t v = t->min_version; v <= t->max_version; v++)
        for (uint64_t seed = 0; seed < SEEDS; seed++)
            roundtrip_one(t, v, seed);
    /* Versions outside the range are refused in both directions. */
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_arena a;
    gr_arena_init(&a);
    void *m = gr_arena_alloc(&a, t->struct_size);
    ck_assert_ptr_nonnull(m);
    uint64_t rng = 1;
    t->fill_random(m, t->max_version, &a, &rng);
    ck_assert_int_eq(t->encode(m, (int16_t)(t->max_version + 1), &w), GR_ERR_VERSION);
    ck_assert_uint_eq(w.len, 0);
    if (t->min_version > 0)
        ck_assert_int_eq(t->encode(m, (int16_t)(t->min_version - 1), &w), GR_ERR_VERSION);
    gr_reader r;
    gr_reader_init(&r, "\0\0\0\0", 4);
    ck_assert_int_eq(t->decode(m, &r, (int16_t)(t->max_version + 1), &a), GR_ERR_VERSION);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

/* Framed metadata log records: frame version 1, record type, record version,
 * then the body. */
START_TEST(test_metadata_record_frames)
{
    int records = 0;
    for (size_t i = 0; i < gr_message_types_count; i++) {
        const gr_message_type *t = &gr_message_types[i];
        if (strcmp(t->kind, "data") != 0 || t->key < 0)
            continue;
        records++;
        const gr_metadata_record_info *info = gr_metadata_record_lookup(t->key);
        ck_assert_ptr_nonnull(info);
        ck_assert_str_eq(info->name, t->name);
        ck_assert_int_eq(info->min_version, t->min_version);
        ck_assert_int_eq(info->max_version, t->max_version);
        for (int16_t v = t->min_version; v <= t->max_version; v++) {
            for (uint64_t seed = 0; seed < SEEDS; seed++) {
                gr_arena a;
                gr_arena_init(&a);
                void *m = gr_arena_alloc(&a, t->struct_size);
                ck_assert_ptr_nonnull(m);
                uint64_t rng = seed + 1000u * (uint64_t)v;
                t->fill_random(m, v, &a, &rng);
                gr_writer w, w2;
                gr_writer_init(&w, 0);
                gr_writer_init(&w2, 0);
                ck_assert_int_eq(gr_metadata_record_encode(t->key, v, m, &w), GR_OK);
                ck_assert_uint_eq(gr_metadata_record_size(t->key, v, m), w.len);
                ck_assert_uint_eq(w.len, 3 + t->size(m, v)); /* types < 128: 1-byte varints */
                ck_assert_int_eq(w.p[0], 1);
                ck_assert_int_eq(w.p[1], t->key);
                ck_assert_int_eq(w.p[2], v);
                gr_reader r;
                gr_reader_init(&r, w.p, w.len);
                int16_t type = -1, version = -1;
                void *out = NULL;
                ck_assert_int_eq(gr_metadata_record_decode(&r, &a, &type, &version, &out), GR_OK);
                ck_assert_uint_eq(r.pos, w.len);
                ck_assert_int_eq(type, t->key);
                ck_assert_int_eq(version, v);
                ck_assert_int_eq(gr_metadata_record_encode(type, version, out, &w2), GR_OK);
                ck_assert_uint_eq(w2.len, w.len);
                ck_assert_mem_eq(w2.p, w.p, w.len);
                gr_writer_free(&w);
                gr_writer_free(&w2);
                gr_arena_free(&a);
            }
        }
    }
    ck_assert_int_ge(records, 13);

    /* Refusals: a bad frame version, an unknown type, a version too new. */
    gr_arena a;
    gr_arena_init(&a);
    int16_t type, version;
    void *out = NULL;
    static const uint8_t frame0[] = {0x00, 0x02, 0x00, 0x00};
    static const uint8_t unknown[] = {0x01, 0x7f, 0x00, 0x00};
    static const uint8_t too_new[] = {0x01, 0x02, 0x05, 0x00};
    gr_reader r;
    gr_reader_init(&r, frame0, sizeof frame0);
    ck_assert_int_eq(gr_metadata_record_decode(&r, &a, &type, &version, &out), GR_ERR_MALFORMED);
    gr_reader_init(&r, unknown, sizeof unknown);
    ck_assert_int_eq(gr_metadata_record_decode(&r, &a, &type, &version, &out), GR_ERR_VERSION);
    gr_reader_init(&r, too_new, sizeof too_new);
    ck_assert_int_eq(gr_metadata_record_decode(&r, &a, &type, &version, &out), GR_ERR_VERSION);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(gr_metadata_record_lookup(127));
    gr_topic_record tr;
    gr_topic_record_init(&tr);
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_metadata_record_encode(GR_METADATA_RECORD_TOPIC, 1, &tr, &w), GR_ERR_VERSION);
    ck_assert_int_eq(gr_metadata_record_encode(127, 0, &tr, &w), GR_ERR_VERSION);
    ck_assert_uint_eq(w.len, 0);
    ck_assert_uint_eq(gr_metadata_record_size(127, 0, &tr), 0);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

/* The table covers every API of the schema, each with its request and its
 * response over the same versions. */
START_TEST(test_table_covers_apis)
{
    int apis = 0;
    for (int16_t key = 0; key < 100; key++) {
        const gr_api_info *api = gr_api_lookup(key);
        if (!api)
            continue;
        apis++;
        int req = 0, resp = 0;
        for (size_t i = 0; i < gr_message_types_count; i++) {
            const gr_message_type *t = &gr_message_types[i];
            if (t->key != key || (strcmp(t->kind, "request") && strcmp(t->kind, "response")))
                continue;
            ck_assert_int_eq(t->min_version, api->min_version);
            ck_assert_int_eq(t->max_version, api->max_version);
            req += strcmp(t->kind, "request") == 0;
            resp += strcmp(t->kind, "response") == 0;
        }
        ck_assert_msg(req == 1 && resp == 1, "api %d (%s)", key, api->name);
    }
    ck_assert_int_ge(apis, 35);
}
END_TEST

/* ---- golden vectors ---- */

/*
 * A record batch (magic 2) with one record: key null, value "hi", base
 * offset 0, partition leader epoch -1 (as a producer sends it), timestamps
 * 1700000000000, no producer id (-1/-1/-1). Its CRC-32C is checked below, so
 * it is a real batch, not filler.
 */
static const uint8_t batch_hi[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* base offset 0 */
    0x00, 0x00, 0x00, 0x3a,                         /* batch length 58 */
    0xff, 0xff, 0xff, 0xff,                         /* partition leader epoch -1 */
    0x02,                                           /* magic 2 */
    0xbb, 0xcc, 0x41, 0x15,                         /* CRC-32C of what follows */
    0x00, 0x00,                                     /* attributes: no codec, CreateTime */
    0x00, 0x00, 0x00, 0x00,                         /* last offset delta 0 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* base timestamp */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* max timestamp */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producer id -1 */
    0xff, 0xff,                                     /* producer epoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* base sequence -1 */
    0x00, 0x00, 0x00, 0x01,                         /* 1 record */
    0x10,                                           /* record length 8 (zig-zag) */
    0x00,                                           /* attributes */
    0x00,                                           /* timestamp delta 0 */
    0x00,                                           /* offset delta 0 */
    0x01,                                           /* key length -1: null */
    0x04, 'h', 'i',                                 /* value length 2, "hi" */
    0x00,                                           /* no headers */
};

START_TEST(test_golden_batch_is_real)
{
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(batch_hi, sizeof batch_hi, true, 1 << 20, &h), GR_BATCH_OK);
}
END_TEST

/* ProduceRequest v9 (the first flexible version) body: acks -1, one topic,
 * one partition carrying batch_hi. */
static const uint8_t golden_produce_v9_head[] = {
    0x00,                   /* transactional_id: null (compact 0) */
    0xff, 0xff,             /* acks -1 */
    0x00, 0x00, 0x75, 0x30, /* timeout_ms 30000 */
    0x02,                   /* topic_data: compact count 1 + 1 */
    0x07, 'o', 'r', 'd', 'e', 'r', 's', /* [0] name: compact length 6 + 1 */
    0x02,                   /*     partition_data: compact count 1 + 1 */
    0x00, 0x00, 0x00, 0x03, /*     [0] index 3 */
    0x47,                   /*         records: compact length 70 + 1 */
};
static const uint8_t golden_produce_v9_tail[] = {
    0x00, /*         tagged fields (partition) */
    0x00, /*     tagged fields (topic) */
    0x00, /* tagged fields */
};

/* Concatenates head, batch_hi and tail into buf; returns the length. */
static size_t with_batch(uint8_t *buf, size_t cap, const uint8_t *head, size_t head_len,
                         const uint8_t *tail, size_t tail_len)
{
    size_t n = head_len + sizeof batch_hi + tail_len;
    ck_assert_uint_le(n, cap);
    memcpy(buf, head, head_len);
    memcpy(buf + head_len, batch_hi, sizeof batch_hi);
    memcpy(buf + head_len + sizeof batch_hi, tail, tail_len);
    return n;
}

START_TEST(test_golden_produce_v9)
{
    uint8_t golden[256];
    size_t len = with_batch(golden, sizeof golden, golden_produce_v9_head,
                            sizeof golden_produce_v9_head, golden_produce_v9_tail,
                            sizeof golden_produce_v9_tail);
    ck_assert_int_eq(gr_request_header_version(GR_API_PRODUCE, 9), 2);
    ck_assert_int_eq(gr_request_header_version(GR_API_PRODUCE, 8), 1);

    /* bytes -> struct */
    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, golden, len);
    gr_produce_request m;
    ck_assert_int_eq(gr_produce_request_decode(&m, &r, 9, &a), GR_OK);
    ck_assert_uint_eq(r.pos, len);
    ck_assert_int_eq(m.transactional_id.len, -1);
    ck_assert_int_eq(m.acks, -1);
    ck_assert_int_eq(m.timeout_ms, 30000);
    ck_assert_int_eq(m.topic_data_count, 1);
    ck_assert(gr_str_eq(m.topic_data[0].name, "orders"));
    ck_assert_int_eq(m.topic_data[0].partition_data_count, 1);
    const gr_produce_request_partition_produce_data *p = &m.topic_data[0].partition_data[0];
    ck_assert_int_eq(p->index, 3);
    ck_assert_int_eq(p->records.len, (int32_t)sizeof batch_hi);
    ck_assert_mem_eq(p->records.ptr, batch_hi, sizeof batch_hi);
    /* The records point into the frame: nothing was copied. */
    ck_assert_ptr_eq(p->records.ptr, golden + sizeof golden_produce_v9_head);

    /* struct -> bytes */
    gr_produce_request_partition_produce_data part;
    gr_produce_request_partition_produce_data_init(&part);
    part.index = 3;
    part.records = (gr_bytes){batch_hi, (int32_t)sizeof batch_hi};
    gr_produce_request_topic_produce_data topic;
    gr_produce_request_topic_produce_data_init(&topic);
    topic.name = gr_str_from("orders");
    topic.partition_data = &part;
    topic.partition_data_count = 1;
    gr_produce_request req;
    gr_produce_request_init(&req);
    ck_assert_int_eq(req.transactional_id.len, -1); /* default null */
    req.acks = -1;
    req.timeout_ms = 30000;
    req.topic_data = &topic;
    req.topic_data_count = 1;
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_request_encode(GR_API_PRODUCE, 9, &req, &w), GR_OK);
    ck_assert_uint_eq(gr_request_size(GR_API_PRODUCE, 9, &req), len);
    ck_assert_uint_eq(w.len, len);
    ck_assert_mem_eq(w.p, golden, len);
    gr_writer_free(&w);

    /* v8 (not flexible) of the same request: int16 / int32 lengths. */
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_produce_request_encode(&req, 8, &w), GR_OK);
    static const uint8_t v8_head[] = {
        0xff, 0xff,             /* transactional_id: null (int16 -1) */
        0xff, 0xff,             /* acks -1 */
        0x00, 0x00, 0x75, 0x30, /* timeout_ms */
        0x00, 0x00, 0x00, 0x01, /* topic_data: 1 */
        0x00, 0x06, 'o', 'r', 'd', 'e', 'r', 's',
        0x00, 0x00, 0x00, 0x01, /* partition_data: 1 */
        0x00, 0x00, 0x00, 0x03, /* index 3 */
        0x00, 0x00, 0x00, 0x46, /* records: 70 bytes */
    };
    ck_assert_uint_eq(w.len, sizeof v8_head + sizeof batch_hi);
    ck_assert_mem_eq(w.p, v8_head, sizeof v8_head);
    ck_assert_mem_eq(w.p + sizeof v8_head, batch_hi, sizeof batch_hi);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

/* FetchResponse v12 body: one topic, one partition with batch_hi, and the
 * tagged CurrentLeader (tag 1) set, as a broker sends it with
 * NOT_LEADER_OR_FOLLOWER; the other tagged fields stay at their defaults
 * and are not written. */
static const uint8_t golden_fetch_v12_head[] = {
    0x00, 0x00, 0x00, 0x00, /* throttle_time_ms 0 */
    0x00, 0x00,             /* error_code 0 */
    0x00, 0x00, 0x00, 0x00, /* session_id 0 */
    0x02,                   /* responses: compact count 1 + 1 */
    0x07, 'o', 'r', 'd', 'e', 'r', 's', /* [0] topic (a name up to v12) */
    0x02,                   /*     partitions: compact count 1 + 1 */
    0x00, 0x00, 0x00, 0x03, /*     [0] partition_index 3 */
    0x00, 0x06,             /*         error_code 6 NOT_LEADER_OR_FOLLOWER */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* high_watermark 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* last_stable_offset 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* log_start_offset 0 */
    0x00,                   /*         aborted_transactions: null (compact 0) */
    0xff, 0xff, 0xff, 0xff, /*         preferred_read_replica -1 */
    0x47,                   /*         records: compact length 70 + 1 */
};
static const uint8_t golden_fetch_v12_tail[] = {
    0x01,                   /*         tagged fields: 1 */
    0x01, 0x09,             /*         tag 1 current_leader, 9 bytes */
    0x00, 0x00, 0x00, 0x02, /*             leader_id 2 */
    0x00, 0x00, 0x00, 0x07, /*             leader_epoch 7 */
    0x00,                   /*             tagged fields */
    0x00,                   /*     tagged fields (topic) */
    0x00,                   /* tagged fields */
};

START_TEST(test_golden_fetch_v12)
{
    uint8_t golden[256];
    size_t len = with_batch(golden, sizeof golden, golden_fetch_v12_head,
                            sizeof golden_fetch_v12_head, golden_fetch_v12_tail,
                            sizeof golden_fetch_v12_tail);
    ck_assert_int_eq(gr_response_header_version(GR_API_FETCH, 12), 1);
    ck_assert_int_eq(gr_response_header_version(GR_API_FETCH, 11), 0);

    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, golden, len);
    gr_fetch_response m;
    ck_assert_int_eq(gr_fetch_response_decode(&m, &r, 12, &a), GR_OK);
    ck_assert_uint_eq(r.pos, len);
    ck_assert_int_eq(m.responses_count, 1);
    ck_assert(gr_str_eq(m.responses[0].topic, "orders"));
    ck_assert_int_eq(m.responses[0].partitions_count, 1);
    const gr_fetch_response_partition_data *p = &m.responses[0].partitions[0];
    ck_assert_int_eq(p->partition_index, 3);
    ck_assert_int_eq(p->error_code, 6);
    ck_assert_int_eq(p->high_watermark, 1);
    ck_assert_int_eq(p->last_stable_offset, 1);
    ck_assert_int_eq(p->log_start_offset, 0);
    ck_assert_int_eq(p->aborted_transactions_count, -1);
    ck_assert_int_eq(p->preferred_read_replica, -1);
    ck_assert_int_eq(p->records.len, (int32_t)sizeof batch_hi);
    ck_assert_mem_eq(p->records.ptr, batch_hi, sizeof batch_hi);
    ck_assert_int_eq(p->current_leader.leader_id, 2);
    ck_assert_int_eq(p->current_leader.leader_epoch, 7);
    /* Absent tagged fields hold their defaults. */
    ck_assert_int_eq(p->diverging_epoch.epoch, -1);
    ck_assert_int_eq(p->diverging_epoch.end_offset, -1);
    ck_assert_int_eq(p->snapshot_id.end_offset, -1);
    ck_assert_int_eq(p->snapshot_id.epoch, -1);

    gr_fetch_response_partition_data part;
    gr_fetch_response_partition_data_init(&part);
    ck_assert_int_eq(part.last_stable_offset, -1);
    ck_assert_int_eq(part.preferred_read_replica, -1);
    ck_assert_int_eq(part.current_leader.leader_id, -1);
    part.partition_index = 3;
    part.error_code = 6;
    part.high_watermark = 1;
    part.last_stable_offset = 1;
    part.log_start_offset = 0;
    part.aborted_transactions_count = -1;
    part.records = (gr_bytes){batch_hi, (int32_t)sizeof batch_hi};
    part.current_leader.leader_id = 2;
    part.current_leader.leader_epoch = 7;
    gr_fetch_response_fetchable_topic_response topic;
    gr_fetch_response_fetchable_topic_response_init(&topic);
    topic.topic = gr_str_from("orders");
    topic.partitions = &part;
    topic.partitions_count = 1;
    gr_fetch_response resp;
    gr_fetch_response_init(&resp);
    resp.responses = &topic;
    resp.responses_count = 1;
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_response_encode(GR_API_FETCH, 12, &resp, &w), GR_OK);
    ck_assert_uint_eq(gr_response_size(GR_API_FETCH, 12, &resp), len);
    ck_assert_uint_eq(w.len, len);
    ck_assert_mem_eq(w.p, golden, len);
    gr_writer_free(&w);

    /* With the leader back at its default, no tagged field is written. */
    part.current_leader.leader_id = -1;
    part.current_leader.leader_epoch = -1;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_fetch_response_encode(&resp, 12, &w), GR_OK);
    ck_assert_uint_eq(w.len, len - 11);
    ck_assert_mem_eq(w.p, golden, sizeof golden_fetch_v12_head + sizeof batch_hi);
    ck_assert_int_eq(w.p[w.len - 3], 0x00);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

/* TopicRecord v0 (record type 2): name "orders" and its topic id, as a body
 * and as a framed metadata log record. */
static const uint8_t golden_topic_record_v0[] = {
    0x01,                                           /* frame version 1 */
    0x02,                                           /* record type 2: TopicRecord */
    0x00,                                           /* record version 0 */
    0x07, 'o', 'r', 'd', 'e', 'r', 's',             /* name: compact length 6 + 1 */
    0x5e, 0x1f, 0x3a, 0x90, 0x2b, 0x44, 0x4c, 0x11, /* topic_id */
    0x8a, 0x0d, 0x6e, 0x77, 0x01, 0x02, 0x03, 0x04,
    0x00, /* tagged fields */
};
static const gr_uuid golden_topic_id = {{0x5e, 0x1f, 0x3a, 0x90, 0x2b, 0x44, 0x4c, 0x11, 0x8a, 0x0d,
                                         0x6e, 0x77, 0x01, 0x02, 0x03, 0x04}};

START_TEST(test_golden_topic_record_v0)
{
    const uint8_t *body = golden_topic_record_v0 + 3;
    size_t body_len = sizeof golden_topic_record_v0 - 3;
    gr_arena a;
    gr_arena_init(&a);

    gr_reader r;
    gr_reader_init(&r, body, body_len);
    gr_topic_record m;
    ck_assert_int_eq(gr_topic_record_decode(&m, &r, 0, &a), GR_OK);
    ck_assert_uint_eq(r.pos, body_len);
    ck_assert(gr_str_eq(m.name, "orders"));
    ck_assert_mem_eq(m.topic_id.b, golden_topic_id.b, 16);

    gr_reader_init(&r, golden_topic_record_v0, sizeof golden_topic_record_v0);
    int16_t type, version;
    void *out = NULL;
    ck_assert_int_eq(gr_metadata_record_decode(&r, &a, &type, &version, &out), GR_OK);
    ck_assert_uint_eq(r.pos, sizeof golden_topic_record_v0);
    ck_assert_int_eq(type, GR_METADATA_RECORD_TOPIC);
    ck_assert_int_eq(type, 2);
    ck_assert_int_eq(version, 0);
    const gr_topic_record *tr = out;
    ck_assert(gr_str_eq(tr->name, "orders"));
    ck_assert_mem_eq(tr->topic_id.b, golden_topic_id.b, 16);

    gr_topic_record rec;
    gr_topic_record_init(&rec);
    rec.name = gr_str_from("orders");
    rec.topic_id = golden_topic_id;
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_topic_record_encode(&rec, 0, &w), GR_OK);
    ck_assert_uint_eq(gr_topic_record_size(&rec, 0), body_len);
    ck_assert_uint_eq(w.len, body_len);
    ck_assert_mem_eq(w.p, body, body_len);
    gr_writer_free(&w);
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_metadata_record_encode(GR_METADATA_RECORD_TOPIC, 0, &rec, &w), GR_OK);
    ck_assert_uint_eq(w.len, sizeof golden_topic_record_v0);
    ck_assert_mem_eq(w.p, golden_topic_record_v0, sizeof golden_topic_record_v0);
    gr_writer_free(&w);
    gr_arena_free(&a);
}
END_TEST

Suite *proto_all_suite(void)
{
    Suite *s = suite_create("proto_all");
    TCase *tc = tcase_create("roundtrip");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_roundtrip_every_message, 0, (int)gr_message_types_count);
    tcase_add_test(tc, test_metadata_record_frames);
    tcase_add_test(tc, test_table_covers_apis);
    suite_add_tcase(s, tc);

    tc = tcase_create("golden");
    tcase_add_test(tc, test_golden_batch_is_real);
    tcase_add_test(tc, test_golden_produce_v9);
    tcase_add_test(tc, test_golden_fetch_v12);
    tcase_add_test(tc, test_golden_topic_record_v0);
    suite_add_tcase(s, tc);
    return s;
}
