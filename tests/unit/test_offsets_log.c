/*
 * test_offsets_log.c - broker/offsets_log: the records of __consumer_offsets.
 *
 * Golden bytes: one OffsetCommitKey/Value pair (v3 and the v1 written with
 * an expire timestamp) and one GroupMetadataKey/Value pair, written out by
 * hand field by field from Kafka's schemas, so that a difference from what
 * Kafka writes fails here and not in a mixed cluster. The batch header is
 * checked against what Kafka's coordinator runtime writes.
 *
 * Round trips go through a real partition log in a temporary directory,
 * appended with gr_offsets_append on a partition built here as the replica
 * manager builds one (leader, ISR of one), and read back with
 * gr_offsets_load. A record is compared in a rendered text form that holds
 * every field, so any field lost or altered on the way shows up.
 *
 * Hostile logs: records of unknown kinds, records that do not decode, a
 * batch whose bytes changed on disk, compressed, control and transactional
 * batches, bounds (end offset, log start offset). stderr is captured to a
 * temporary file so that tests can assert what was warned about.
 */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/offsets_log.h"
#include "common/batch.h"
#include "common/crc32c.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/logging.h"
#include "tests/unit/suites.h"
#include "tests/unit/testenv.h"

#define T0 1700000000000LL /* 0x0000018BCFE56800 */

static char root[64];

static void setup(void)
{
    gr_test_mkdtemp(root, sizeof root, "offsetslog");
    gr_test_capture_stderr();
    gr_logging_set_level(GR_LOGGING_INFO);
}

static void teardown(void)
{
    gr_test_rmtree(root);
    gr_test_release_stderr();
}

/* ---- a partition of __consumer_offsets led here ---- */

static gr_partition *open_partition(void)
{
    gr_partition *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    snprintf(p->topic, sizeof p->topic, "__consumer_offsets");
    p->index = 7;
    gr_log_config cfg;
    gr_log_config_defaults(&cfg);
    ck_assert_int_eq(gr_log_open(&p->log, root, p->topic, p->index, &cfg, T0), GR_LOG_OK);
    atomic_store(&p->leader, true);
    atomic_store(&p->leader_epoch, 3);
    atomic_store(&p->isr_only_self, true);
    atomic_store(&p->isr_size, 1);
    atomic_store(&p->hw, gr_log_end_offset(p->log));
    atomic_store(&p->max_message_bytes, 1048588);
    atomic_store(&p->refs, 1);
    return p;
}

static void close_partition(gr_partition *p)
{
    ck_assert_int_eq(gr_log_close(p->log, T0), GR_LOG_OK);
    free(p);
}

/* ---- records ---- */

static gr_offsets_record offset_rec(const char *group, const char *topic, int32_t partition,
                                    int64_t offset, const char *metadata)
{
    gr_offsets_record r;
    memset(&r, 0, sizeof r);
    r.kind = GR_OFFSETS_REC_OFFSET;
    r.group = gr_str_from(group);
    r.topic = gr_str_from(topic);
    r.partition = partition;
    gr_offset_commit_value_init(&r.offset);
    r.offset.offset = offset;
    r.offset.leader_epoch = 2;
    r.offset.metadata = gr_str_from(metadata);
    r.offset.commit_timestamp = T0 - 5;
    return r;
}

static gr_offsets_record tombstone(gr_offsets_rec_kind kind, const char *group, const char *topic,
                                   int32_t partition)
{
    gr_offsets_record r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.tombstone = true;
    r.group = gr_str_from(group);
    r.topic = gr_str_from(topic);
    r.partition = partition;
    return r;
}

/* A group with two members; the second has no group.instance.id. */
static gr_group_metadata_member_metadata two_members[2];

static gr_offsets_record group_rec(const char *group, int32_t generation)
{
    gr_offsets_record r;
    memset(&r, 0, sizeof r);
    r.kind = GR_OFFSETS_REC_GROUP;
    r.group = gr_str_from(group);
    gr_group_metadata_value_init(&r.value);
    r.value.protocol_type = gr_str_from("consumer");
    r.value.generation = generation;
    r.value.protocol = gr_str_from("range");
    r.value.leader = gr_str_from("m1");
    r.value.current_state_timestamp = T0;
    for (int i = 0; i < 2; i++)
        gr_group_metadata_member_metadata_init(&two_members[i]);
    two_members[0].member_id = gr_str_from("m1");
    two_members[0].group_instance_id = gr_str_from("i1");
    two_members[0].client_id = gr_str_from("c");
    two_members[0].client_host = gr_str_from("/h");
    two_members[0].rebalance_timeout = 300000;
    two_members[0].session_timeout = 45000;
    two_members[0].subscription = (gr_bytes){(const uint8_t *)"\x01\x02", 2};
    two_members[0].assignment = (gr_bytes){(const uint8_t *)"", 0};
    two_members[1].member_id = gr_str_from("m2");
    two_members[1].group_instance_id = GR_STR_NULL;
    two_members[1].client_id = gr_str_from("c");
    two_members[1].client_host = gr_str_from("/h");
    two_members[1].rebalance_timeout = 300000;
    two_members[1].session_timeout = 45000;
    two_members[1].subscription = (gr_bytes){(const uint8_t *)"\x03", 1};
    two_members[1].assignment = (gr_bytes){(const uint8_t *)"\x04\x05", 2};
    r.value.members = two_members;
    r.value.members_count = 2;
    return r;
}

/* An empty group as the coordinator writes it: no protocol, no leader. */
static gr_offsets_record empty_group_rec(const char *group, int32_t generation)
{
    gr_offsets_record r;
    memset(&r, 0, sizeof r);
    r.kind = GR_OFFSETS_REC_GROUP;
    r.group = gr_str_from(group);
    gr_group_metadata_value_init(&r.value);
    r.value.protocol_type = gr_str_from("consumer");
    r.value.generation = generation;
    r.value.protocol = GR_STR_NULL;
    r.value.leader = GR_STR_NULL;
    r.value.current_state_timestamp = T0 + 1;
    return r;
}

/* ---- a text form of a record with every field ---- */

static void put(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(char *out, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(out);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + len, cap - len, fmt, ap);
    va_end(ap);
}

static void put_str(char *out, size_t cap, const char *name, gr_str s)
{
    if (s.len < 0)
        put(out, cap, " %s=<null>", name);
    else
        put(out, cap, " %s='%.*s'", name, (int)s.len, s.ptr);
}

static void put_bytes(char *out, size_t cap, const char *name, gr_bytes b)
{
    put(out, cap, " %s=", name);
    if (b.len < 0)
        put(out, cap, "<null>");
    for (int32_t i = 0; i < b.len; i++)
        put(out, cap, "%02x", b.ptr[i]);
}

static void render(const gr_offsets_record *r, char *out, size_t cap)
{
    out[0] = '\0';
    put(out, cap, "%s", r->kind == GR_OFFSETS_REC_OFFSET ? "offset" : "group");
    put_str(out, cap, "group", r->group);
    if (r->kind == GR_OFFSETS_REC_OFFSET) {
        put_str(out, cap, "topic", r->topic);
        put(out, cap, " partition=%d", r->partition);
    }
    if (r->tombstone) {
        put(out, cap, " TOMBSTONE");
        return;
    }
    if (r->kind == GR_OFFSETS_REC_OFFSET) {
        const gr_offset_commit_value *v = &r->offset;
        put(out, cap, " offset=%" PRId64 " epoch=%d", v->offset, v->leader_epoch);
        put_str(out, cap, "metadata", v->metadata);
        put(out, cap, " commit=%" PRId64 " expire=%" PRId64, v->commit_timestamp,
            v->expire_timestamp);
        return;
    }
    const gr_group_metadata_value *v = &r->value;
    put_str(out, cap, "type", v->protocol_type);
    put(out, cap, " generation=%d", v->generation);
    put_str(out, cap, "protocol", v->protocol);
    put_str(out, cap, "leader", v->leader);
    put(out, cap, " state_ts=%" PRId64 " members=%d", v->current_state_timestamp,
        v->members_count);
    for (int32_t i = 0; i < v->members_count; i++) {
        const gr_group_metadata_member_metadata *m = &v->members[i];
        put(out, cap, " [");
        put_str(out, cap, "id", m->member_id);
        put_str(out, cap, "instance", m->group_instance_id);
        put_str(out, cap, "client", m->client_id);
        put_str(out, cap, "host", m->client_host);
        put(out, cap, " rebalance=%d session=%d", m->rebalance_timeout, m->session_timeout);
        put_bytes(out, cap, "subscription", m->subscription);
        put_bytes(out, cap, "assignment", m->assignment);
        put(out, cap, " ]");
    }
}

/* What a load saw. */
#define MAX_SEEN 64
typedef struct {
    int n;
    char text[MAX_SEEN][1024];
    int64_t offset[MAX_SEEN];
} seen;

static void collect(void *ctx, const gr_offsets_record *rec, int64_t offset)
{
    seen *s = ctx;
    ck_assert_int_lt(s->n, MAX_SEEN);
    render(rec, s->text[s->n], sizeof s->text[s->n]);
    s->offset[s->n] = offset;
    s->n++;
}

static void assert_seen(const seen *s, int i, const gr_offsets_record *want, int64_t offset)
{
    char buf[1024];
    render(want, buf, sizeof buf);
    ck_assert_int_lt(i, s->n);
    ck_assert_str_eq(s->text[i], buf);
    ck_assert_int_eq(s->offset[i], offset);
}

/* Loads the whole log of p into *s. */
static void load_all(gr_partition *p, seen *s)
{
    memset(s, 0, sizeof *s);
    ck_assert_int_eq(gr_offsets_load(p->log, gr_log_end_offset(p->log), collect, s), GR_LOG_OK);
}

/* ---- golden bytes ---- */

/* The one record of a batch gr_offsets_encode_batch built, with checks of
 * the header Kafka's coordinator runtime writes. The returned key and value
 * point into *batch (free it). */
static gr_record encode_one(const gr_offsets_record *rec, uint8_t **batch)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_offsets_encode_batch(rec, 1, T0, &w), GR_OK);
    size_t len;
    *batch = gr_writer_take(&w, &len);
    gr_batch_header h;
    ck_assert_int_eq(gr_batch_validate(*batch, len, true, 1 << 20, &h), GR_BATCH_OK);
    ck_assert_int_eq(gr_batch_size(&h), len);
    ck_assert_int_eq(h.base_offset, 0);
    ck_assert_int_eq(h.partition_leader_epoch, -1);
    ck_assert_int_eq(h.magic, 2);
    ck_assert_int_eq(h.attributes, 0); /* no codec, CreateTime, not transactional */
    ck_assert_int_eq(h.last_offset_delta, 0);
    ck_assert_int_eq(h.base_timestamp, T0);
    ck_assert_int_eq(h.max_timestamp, T0);
    ck_assert_int_eq(h.producer_id, -1);
    ck_assert_int_eq(h.producer_epoch, -1);
    ck_assert_int_eq(h.base_sequence, 0);
    ck_assert_int_eq(h.record_count, 1);
    gr_record_iter it;
    ck_assert_int_eq(gr_record_iter_init(&it, *batch, len, 0), GR_BATCH_OK);
    gr_record r;
    gr_batch_result err;
    ck_assert_int_eq(gr_record_iter_next(&it, &r, &err), 1);
    ck_assert_int_eq(r.attributes, 0);
    ck_assert_int_eq(r.timestamp_delta, 0);
    ck_assert_int_eq(r.offset_delta, 0);
    ck_assert_int_eq(r.header_count, 0);
    ck_assert_int_eq(gr_record_iter_next(&it, &r, &err), 0);
    gr_record_iter_free(&it);
    return r;
}

static void assert_bytes(gr_bytes got, const uint8_t *want, size_t n)
{
    ck_assert_int_eq(got.len, (int32_t)n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got.ptr[i] == want[i], "byte %zu: got %02x, want %02x", i, got.ptr[i],
                      want[i]);
}

static const uint8_t OFFSET_KEY_G_T_5[] = {
    0x00, 0x01,                   /* key version 1: OffsetCommitKey */
    0x00, 0x01, 'g',              /* group */
    0x00, 0x01, 't',              /* topic */
    0x00, 0x00, 0x00, 0x05,       /* partition */
};

START_TEST(golden_offset_commit)
{
    gr_offsets_record rec = offset_rec("g", "t", 5, 42, "m");
    rec.offset.leader_epoch = 7;
    rec.offset.commit_timestamp = T0;
    static const uint8_t value[] = {
        0x00, 0x03,                                     /* value version 3 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* offset 42 */
        0x00, 0x00, 0x00, 0x07,                         /* leader epoch 7 */
        0x00, 0x01, 'm',                                /* metadata */
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* commit timestamp */
    };
    uint8_t *batch;
    gr_record r = encode_one(&rec, &batch);
    assert_bytes(r.key, OFFSET_KEY_G_T_5, sizeof OFFSET_KEY_G_T_5);
    assert_bytes(r.value, value, sizeof value);
    free(batch);
}
END_TEST

START_TEST(golden_offset_commit_with_expire)
{
    /* An explicit expire timestamp: v1, which has it and no leader epoch. */
    gr_offsets_record rec = offset_rec("g", "t", 5, 42, "");
    rec.offset.leader_epoch = 7;
    rec.offset.commit_timestamp = T0;
    rec.offset.expire_timestamp = T0 + 256;
    static const uint8_t value[] = {
        0x00, 0x01,                                     /* value version 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* offset 42 */
        0x00, 0x00,                                     /* metadata "" */
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* commit timestamp */
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0x00, /* expire timestamp */
    };
    uint8_t *batch;
    gr_record r = encode_one(&rec, &batch);
    assert_bytes(r.key, OFFSET_KEY_G_T_5, sizeof OFFSET_KEY_G_T_5);
    assert_bytes(r.value, value, sizeof value);
    free(batch);
}
END_TEST

START_TEST(golden_group_metadata)
{
    gr_offsets_record rec = group_rec("g", 4);
    static const uint8_t key[] = {
        0x00, 0x02,      /* key version 2: GroupMetadataKey */
        0x00, 0x01, 'g', /* group */
    };
    static const uint8_t value[] = {
        0x00, 0x03,                                               /* value version 3 */
        0x00, 0x08, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',       /* protocol type */
        0x00, 0x00, 0x00, 0x04,                                   /* generation */
        0x00, 0x05, 'r', 'a', 'n', 'g', 'e',                      /* protocol */
        0x00, 0x02, 'm', '1',                                     /* leader */
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,           /* current state timestamp */
        0x00, 0x00, 0x00, 0x02,                                   /* 2 members */
        0x00, 0x02, 'm', '1',                                     /*   member id */
        0x00, 0x02, 'i', '1',                                     /*   group instance id */
        0x00, 0x01, 'c',                                          /*   client id */
        0x00, 0x02, '/', 'h',                                     /*   client host */
        0x00, 0x04, 0x93, 0xe0,                                   /*   rebalance timeout */
        0x00, 0x00, 0xaf, 0xc8,                                   /*   session timeout */
        0x00, 0x00, 0x00, 0x02, 0x01, 0x02,                       /*   subscription */
        0x00, 0x00, 0x00, 0x00,                                   /*   assignment (empty) */
        0x00, 0x02, 'm', '2',                                     /*   member id */
        0xff, 0xff,                                               /*   group instance id null */
        0x00, 0x01, 'c',                                          /*   client id */
        0x00, 0x02, '/', 'h',                                     /*   client host */
        0x00, 0x04, 0x93, 0xe0,                                   /*   rebalance timeout */
        0x00, 0x00, 0xaf, 0xc8,                                   /*   session timeout */
        0x00, 0x00, 0x00, 0x01, 0x03,                             /*   subscription */
        0x00, 0x00, 0x00, 0x02, 0x04, 0x05,                       /*   assignment */
    };
    uint8_t *batch;
    gr_record r = encode_one(&rec, &batch);
    assert_bytes(r.key, key, sizeof key);
    assert_bytes(r.value, value, sizeof value);
    free(batch);
}
END_TEST

START_TEST(golden_tombstones)
{
    uint8_t *batch;
    gr_offsets_record rec = tombstone(GR_OFFSETS_REC_OFFSET, "g", "t", 5);
    gr_record r = encode_one(&rec, &batch);
    assert_bytes(r.key, OFFSET_KEY_G_T_5, sizeof OFFSET_KEY_G_T_5);
    ck_assert_int_eq(r.value.len, -1);
    free(batch);

    static const uint8_t key[] = {0x00, 0x02, 0x00, 0x01, 'g'};
    rec = tombstone(GR_OFFSETS_REC_GROUP, "g", NULL, 0);
    r = encode_one(&rec, &batch);
    assert_bytes(r.key, key, sizeof key);
    ck_assert_int_eq(r.value.len, -1);
    free(batch);
}
END_TEST

START_TEST(encode_refuses_what_has_no_encoding)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_offsets_record rec = offset_rec("g", "t", 0, 1, "");
    ck_assert_int_ne(gr_offsets_encode_batch(&rec, 0, T0, &w), GR_OK);
    ck_assert_int_ne(gr_offsets_encode_batch(NULL, 1, T0, &w), GR_OK);
    rec.group = GR_STR_NULL; /* the key's group is not nullable */
    ck_assert_int_ne(gr_offsets_encode_batch(&rec, 1, T0, &w), GR_OK);
    rec = group_rec("g", 1);
    rec.value.protocol_type = GR_STR_NULL;
    ck_assert_int_ne(gr_offsets_encode_batch(&rec, 1, T0, &w), GR_OK);
    rec.kind = (gr_offsets_rec_kind)9;
    ck_assert_int_ne(gr_offsets_encode_batch(&rec, 1, T0, &w), GR_OK);
    ck_assert_int_eq(w.len, 0); /* nothing half-written */
    gr_writer_free(&w);
}
END_TEST

/* ---- round trips through the log ---- */

START_TEST(append_and_load_every_kind)
{
    gr_partition *p = open_partition();
    gr_offsets_record first[3] = {
        offset_rec("g1", "orders", 0, 100, "meta"),
        offset_rec("g1", "orders", 1, 200, ""),
        group_rec("g1", 5),
    };
    first[1].offset.expire_timestamp = T0 + 86400000; /* written as v1 */
    int64_t last = -1;
    ck_assert_int_eq(gr_offsets_append(p, first, 3, T0, &last), GR_NONE);
    ck_assert_int_eq(last, 2);
    ck_assert_int_eq(atomic_load(&p->hw), 3);

    gr_offsets_record second[3] = {
        tombstone(GR_OFFSETS_REC_OFFSET, "g1", "orders", 1),
        empty_group_rec("g2", 9),
        tombstone(GR_OFFSETS_REC_GROUP, "g3", NULL, 0),
    };
    ck_assert_int_eq(gr_offsets_append(p, second, 3, T0 + 10, &last), GR_NONE);
    ck_assert_int_eq(last, 5);
    ck_assert_int_eq(gr_offsets_append(p, first, 1, T0 + 20, NULL), GR_NONE);
    ck_assert_int_eq(atomic_load(&p->hw), 7);

    /* The batches carry the leader's epoch. */
    ck_assert_int_eq(gr_log_latest_epoch(p->log), 3);

    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 7);
    assert_seen(&s, 0, &first[0], 0);
    gr_offsets_record v1 = first[1];
    v1.offset.leader_epoch = -1; /* v1 has no leader epoch */
    assert_seen(&s, 1, &v1, 1);
    assert_seen(&s, 2, &first[2], 2);
    assert_seen(&s, 3, &second[0], 3);
    assert_seen(&s, 4, &second[1], 4);
    assert_seen(&s, 5, &second[2], 5);
    assert_seen(&s, 6, &first[0], 6);
    ck_assert_int_eq(gr_test_logged("skipping"), 0);

    /* A restart: the same records come back from the files. */
    close_partition(p);
    p = open_partition();
    seen again;
    load_all(p, &again);
    ck_assert_int_eq(again.n, 7);
    for (int i = 0; i < 7; i++) {
        ck_assert_str_eq(again.text[i], s.text[i]);
        ck_assert_int_eq(again.offset[i], s.offset[i]);
    }
    close_partition(p);
}
END_TEST

START_TEST(append_errors)
{
    gr_partition *p = open_partition();
    gr_offsets_record rec = offset_rec("g", "t", 0, 1, "");
    atomic_store(&p->leader, false);
    ck_assert_int_eq(gr_offsets_append(p, &rec, 1, T0, NULL), GR_NOT_COORDINATOR);
    atomic_store(&p->leader, true);

    /* Larger than the topic's max.message.bytes. */
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    rec.offset.metadata = gr_str_from(big);
    atomic_store(&p->max_message_bytes, 2048);
    ck_assert_int_eq(gr_offsets_append(p, &rec, 1, T0, NULL), GR_RECORD_LIST_TOO_LARGE);
    atomic_store(&p->max_message_bytes, 1048588);
    int64_t last = -1;
    ck_assert_int_eq(gr_offsets_append(p, &rec, 1, T0, &last), GR_NONE);
    ck_assert_int_eq(last, 0);

    /* Nothing to encode it with. */
    rec.topic = GR_STR_NULL;
    ck_assert_int_eq(gr_offsets_append(p, &rec, 1, T0, NULL), GR_UNKNOWN_SERVER_ERROR);
    ck_assert_int_eq(gr_offsets_append(p, &rec, 0, T0, NULL), GR_UNKNOWN_SERVER_ERROR);
    /* Only the good append reached the log. */
    ck_assert_int_eq(gr_log_end_offset(p->log), 1);
    close_partition(p);
}
END_TEST

/* Records that do not depend on each other go in as many batches as hold
 * them; only a record too large on its own stops them, after the ones
 * before it are in. */
START_TEST(append_split_across_batches)
{
    gr_partition *p = open_partition();
    static char md[101];
    memset(md, 'm', sizeof md - 1);
    enum { N = 40 };
    gr_offsets_record recs[N];
    char topics[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(topics[i], sizeof topics[i], "t%d", i);
        recs[i] = offset_rec("g", topics[i], i, i, md);
    }
    atomic_store(&p->max_message_bytes, 2048);
    ck_assert_int_eq(gr_offsets_append(p, recs, N, T0, NULL), GR_RECORD_LIST_TOO_LARGE);
    size_t done = 0;
    ck_assert_int_eq(gr_offsets_append_split(p, recs, N, T0, &done), GR_NONE);
    ck_assert_uint_eq(done, N);
    ck_assert_int_eq(gr_log_end_offset(p->log), N);
    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, N);
    for (int i = 0; i < N; i++)
        assert_seen(&s, i, &recs[i], i);

    /* The third record alone exceeds the limit: the two before it stay. */
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    recs[2].offset.metadata = gr_str_from(big);
    ck_assert_int_eq(gr_offsets_append_split(p, recs, 5, T0, &done), GR_RECORD_LIST_TOO_LARGE);
    ck_assert_uint_eq(done, 2);
    ck_assert_int_eq(gr_log_end_offset(p->log), N + 2);
    close_partition(p);
}
END_TEST

/* Appends a batch of raw key/value records (offset deltas 0..n-1). */
static void append_raw(gr_log *log, const gr_bytes *keys, const gr_bytes *values, int n,
                       gr_codec codec, int16_t attributes, int64_t producer_id)
{
    gr_record_spec specs[16];
    ck_assert_int_le(n, 16);
    memset(specs, 0, sizeof specs);
    for (int i = 0; i < n; i++) {
        specs[i].timestamp = T0;
        specs[i].offset_delta = i;
        specs[i].key = keys[i];
        specs[i].value = values[i];
    }
    gr_batch_spec spec = {.partition_leader_epoch = -1, .attributes = attributes, .codec = codec,
                          .producer_id = producer_id, .producer_epoch = producer_id >= 0 ? 0 : -1,
                          .base_sequence = producer_id >= 0 ? 0 : -1};
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_batch_build(&w, &spec, specs, n), GR_OK);
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(log, w.p, w.len, 0, 0, 0, T0, &res), GR_LOG_OK);
    gr_writer_free(&w);
}

/* The key and value gr_offsets_encode_batch gives rec, copied into kbuf and
 * vbuf (at least 512 bytes each). */
static void encoded_kv(const gr_offsets_record *rec, uint8_t *kbuf, gr_bytes *key, uint8_t *vbuf,
                       gr_bytes *value)
{
    uint8_t *batch;
    gr_record r = encode_one(rec, &batch);
    ck_assert_int_le(r.key.len, 512);
    ck_assert_int_le(r.value.len, 512);
    memcpy(kbuf, r.key.ptr, (size_t)r.key.len);
    *key = (gr_bytes){kbuf, r.key.len};
    *value = r.value;
    if (r.value.len >= 0) {
        memcpy(vbuf, r.value.ptr, (size_t)r.value.len);
        value->ptr = vbuf;
    }
    free(batch);
}

START_TEST(unknown_kinds_skipped_quietly)
{
    gr_partition *p = open_partition();
    gr_offsets_record good = offset_rec("g", "t", 3, 33, "x");
    static uint8_t kb[512], vb[512];
    gr_bytes gk, gv;
    encoded_kv(&good, kb, &gk, vb, &gv);
    /* Key versions 3 and up are the consumer protocol's records (here a
     * ConsumerGroupMetadataKey and value, and a future type). */
    static const uint8_t k3[] = {0x00, 0x03, 0x00, 0x01, 'g'};
    static const uint8_t v3[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t k99[] = {0x00, 0x63};
    gr_bytes keys[] = {{k3, sizeof k3}, gk, {k99, sizeof k99}, {k3, sizeof k3}};
    gr_bytes values[] = {{v3, sizeof v3}, gv, GR_BYTES_NULL, GR_BYTES_NULL};
    append_raw(p->log, keys, values, 4, GR_CODEC_NONE, 0, -1);

    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 1);
    assert_seen(&s, 0, &good, 1);
    ck_assert_int_eq(gr_test_logged("skipping"), 0);
    close_partition(p);
}
END_TEST

START_TEST(damaged_records_skipped)
{
    gr_partition *p = open_partition();
    gr_offsets_record good = offset_rec("g", "t", 3, 33, "x");
    gr_offsets_record grp = group_rec("g", 2);
    static uint8_t kb[512], vb[512], gkb[512], gvb[512];
    gr_bytes gk, gv, grk, grv;
    encoded_kv(&good, kb, &gk, vb, &gv);
    encoded_kv(&grp, gkb, &grk, gvb, &grv);

    static const uint8_t short_version[] = {0x00};
    static const uint8_t short_key[] = {0x00, 0x01, 0x00, 0x05, 'g'};   /* group overruns */
    static const uint8_t neg_len_key[] = {0x00, 0x02, 0xff, 0xfe};      /* length -2 */
    static const uint8_t v9[] = {0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 1};   /* unknown version */
    static const uint8_t v_neg[] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}; /* version -1 */
    static const uint8_t v3_short[] = {0x00, 0x03, 0, 0, 0, 0};         /* truncated offset */
    /* A GroupMetadataValue v3 whose member count could never fit. */
    static const uint8_t many_members[] = {0x00, 0x03, 0x00, 0x00, 0, 0, 0, 1, 0xff, 0xff,
                                           0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0x7f, 0xff, 0xff, 0xff};
    gr_bytes keys[] = {
        GR_BYTES_NULL,                     /* 0 no key */
        {short_version, sizeof short_version}, /* 1 */
        {short_key, sizeof short_key},     /* 2 */
        {neg_len_key, sizeof neg_len_key}, /* 3 */
        gk,                                /* 4 unknown value version */
        gk,                                /* 5 negative value version */
        gk,                                /* 6 truncated value */
        grk,                               /* 7 member count */
        gk,                                /* 8 the good one */
        grk,                               /* 9 offset value under a group key */
        grk,                               /* 10 the good group */
    };
    gr_bytes values[] = {
        gv, gv, gv, GR_BYTES_NULL,
        {v9, sizeof v9}, {v_neg, sizeof v_neg}, {v3_short, sizeof v3_short},
        {many_members, sizeof many_members},
        gv, gv, grv,
    };
    append_raw(p->log, keys, values, 11, GR_CODEC_NONE, 0, -1);
    /* And a later batch is still read. */
    ck_assert_int_eq(gr_offsets_append(p, &good, 1, T0, NULL), GR_NONE);

    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 3);
    assert_seen(&s, 0, &good, 8);
    assert_seen(&s, 1, &grp, 10);
    assert_seen(&s, 2, &good, 11);
    ck_assert_int_eq(gr_test_logged("skipping the record at offset"), 9);
    ck_assert_int_eq(gr_test_logged("offset 0: no key"), 1);
    ck_assert_int_eq(gr_test_logged("offset 4: unknown OffsetCommitValue version"), 1);
    close_partition(p);
}
END_TEST

/* Flips a byte inside the records of the batch at file position pos of the
 * partition's only segment. */
static void corrupt_segment_byte(uint64_t pos)
{
    char path[256];
    snprintf(path, sizeof path, "%s/__consumer_offsets-7/%020d.log", root, 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)pos), 1);
    b ^= 0x55;
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)pos), 1);
    close(fd);
}

START_TEST(batch_damaged_on_disk_skipped)
{
    gr_partition *p = open_partition();
    gr_offsets_record a = offset_rec("g", "t", 0, 10, "");
    gr_offsets_record b[2] = {offset_rec("g", "t", 1, 11, ""), offset_rec("g", "t", 2, 12, "")};
    gr_offsets_record c = group_rec("g", 3);
    ck_assert_int_eq(gr_offsets_append(p, &a, 1, T0, NULL), GR_NONE);
    uint64_t b_pos = gr_log_size_bytes(p->log);
    ck_assert_int_eq(gr_offsets_append(p, b, 2, T0, NULL), GR_NONE);
    uint64_t c_pos = gr_log_size_bytes(p->log);
    ck_assert_int_eq(gr_offsets_append(p, &c, 1, T0, NULL), GR_NONE);
    /* Damage the second batch after the log accepted it, in a way that
     * still parses: the last byte of its last value (a commit timestamp;
     * the byte after it is the record's header count). Only the CRC can
     * tell. */
    ck_assert_int_gt(c_pos, b_pos);
    corrupt_segment_byte(c_pos - 2);

    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 2);
    assert_seen(&s, 0, &a, 0);
    assert_seen(&s, 1, &c, 3);
    ck_assert_int_eq(gr_test_logged("skipping the batch at offset 1: CRC mismatch"), 1);
    close_partition(p);
}
END_TEST

START_TEST(batch_with_records_cut_short)
{
    /* A batch whose CRC is right but whose records end before its count
     * says (written so, not damaged later): the records before the damage
     * are loaded, the rest skipped, and the next batch read. */
    gr_partition *p = open_partition();
    gr_offsets_record recs[3] = {offset_rec("g", "t", 0, 1, ""), offset_rec("g", "t", 1, 2, ""),
                                 offset_rec("g", "t", 2, 3, "")};
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_offsets_encode_batch(recs, 3, T0, &w), GR_OK);
    /* Record count 4 instead of 3, and the CRC made right again. */
    w.p[57] = 0;
    w.p[58] = 0;
    w.p[59] = 0;
    w.p[60] = 4;
    uint32_t crc = gr_crc32c(0, w.p + GR_BATCH_OFF_ATTRIBUTES, w.len - GR_BATCH_OFF_ATTRIBUTES);
    for (int i = 0; i < 4; i++)
        w.p[GR_BATCH_OFF_CRC + i] = (uint8_t)(crc >> (24 - 8 * i));
    gr_log_append_result res;
    ck_assert_int_eq(gr_log_append(p->log, w.p, w.len, 0, 0, 0, T0, &res), GR_LOG_OK);
    gr_writer_free(&w);
    ck_assert_int_eq(gr_offsets_append(p, &recs[2], 1, T0, NULL), GR_NONE);

    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 4);
    for (int i = 0; i < 3; i++)
        assert_seen(&s, i, &recs[i], i);
    assert_seen(&s, 3, &recs[2], 3);
    ck_assert_int_eq(gr_test_logged("skipping the rest of the batch after offset 2: record count"), 1);
    close_partition(p);
}
END_TEST

START_TEST(warnings_bounded)
{
    /* A log full of damage warns about the first records one by one and
     * about the rest in one line. */
    gr_partition *p = open_partition();
    gr_bytes keys[16], values[16];
    for (int i = 0; i < 16; i++) {
        keys[i] = GR_BYTES_NULL;
        values[i] = GR_BYTES_NULL;
    }
    append_raw(p->log, keys, values, 16, GR_CODEC_NONE, 0, -1);
    append_raw(p->log, keys, values, 16, GR_CODEC_NONE, 0, -1);
    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_eq(gr_test_logged(": no key"), 20);
    ck_assert_int_eq(gr_test_logged("32 damaged records or batches skipped in all"), 1);
    close_partition(p);
}
END_TEST

/* Counts visits, and checks that whatever decoded can be written back. */
static void count_reencodable(void *ctx, const gr_offsets_record *rec, int64_t offset)
{
    (void)offset;
    gr_writer w;
    gr_writer_init(&w, 0);
    ck_assert_int_eq(gr_offsets_encode_batch(rec, 1, T0, &w), GR_OK);
    gr_writer_free(&w);
    (*(int *)ctx)++;
}

START_TEST(random_bytes_never_crash)
{
    /* Keys of every known kind and values of versions 0-5 followed by
     * random bytes: a load reads them all without stopping, and every
     * record is either visited or counted as damaged. */
    gr_partition *p = open_partition();
    uint64_t x = 0x2545F4914F6CDD1DULL;
    static uint8_t kb[16][48], vb[16][80];
    enum { BATCHES = 20, PER_BATCH = 16 };
    for (int b = 0; b < BATCHES; b++) {
        gr_bytes keys[PER_BATCH], values[PER_BATCH];
        for (int i = 0; i < PER_BATCH; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t klen = 2 + x % 46, vlen = 2 + (x >> 8) % 78;
            for (size_t k = 0; k < sizeof kb[i]; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                kb[i][k] = (uint8_t)x;
                vb[i][k] = (uint8_t)(x >> 8);
            }
            for (size_t k = sizeof kb[i]; k < sizeof vb[i]; k++)
                vb[i][k] = (uint8_t)(x >> (k % 56));
            /* Small lengths are likelier to decode: mostly 0-3 bytes. */
            kb[i][0] = 0, kb[i][1] = (uint8_t)(x % 3);
            kb[i][2] = 0, kb[i][3] = (uint8_t)(x >> 16) % 4;
            vb[i][0] = 0, vb[i][1] = (uint8_t)(x >> 24) % 6;
            keys[i] = (gr_bytes){kb[i], (int32_t)klen};
            values[i] = (x >> 40) % 8 == 0 ? GR_BYTES_NULL : (gr_bytes){vb[i], (int32_t)vlen};
        }
        append_raw(p->log, keys, values, PER_BATCH, b % 2 ? GR_CODEC_ZSTD : GR_CODEC_NONE, 0, -1);
    }
    int visited = 0;
    int64_t end = gr_log_end_offset(p->log);
    ck_assert_int_eq(gr_offsets_load(p->log, end, count_reencodable, &visited), GR_LOG_OK);
    char line[80];
    snprintf(line, sizeof line, "%d damaged records or batches skipped in all",
             BATCHES * PER_BATCH - visited);
    ck_assert_msg(visited > 0 && gr_test_logged(line) == 1, "%d visited; no line \"%s\"", visited, line);
    close_partition(p);
}
END_TEST

START_TEST(compressed_batches_loaded)
{
    gr_partition *p = open_partition();
    gr_codec codecs[] = {GR_CODEC_GZIP, GR_CODEC_SNAPPY, GR_CODEC_LZ4, GR_CODEC_ZSTD};
    gr_offsets_record recs[4][2];
    static uint8_t kb[4][2][512], vb[4][2][512];
    for (int c = 0; c < 4; c++) {
        recs[c][0] = offset_rec("cg", "topic", c, 1000 + c, "compressed");
        recs[c][1] = c % 2 ? group_rec("cg", c) : tombstone(GR_OFFSETS_REC_OFFSET, "cg", "x", c);
        gr_bytes keys[2], values[2];
        for (int i = 0; i < 2; i++)
            encoded_kv(&recs[c][i], kb[c][i], &keys[i], vb[c][i], &values[i]);
        append_raw(p->log, keys, values, 2, codecs[c], 0, -1);
    }
    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 8);
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 2; i++)
            assert_seen(&s, 2 * c + i, &recs[c][i], 2 * c + i);
    ck_assert_int_eq(gr_test_logged("skipping"), 0);
    close_partition(p);
}
END_TEST

START_TEST(control_and_transactional_batches_skipped)
{
    gr_partition *p = open_partition();
    gr_offsets_record rec = offset_rec("g", "t", 0, 5, "");
    static uint8_t kb[512], vb[512];
    gr_bytes k, v;
    encoded_kv(&rec, kb, &k, vb, &v);
    append_raw(p->log, &k, &v, 1, GR_CODEC_NONE, GR_BATCH_ATTR_TRANSACTIONAL, 1000);
    /* A commit marker: control record key version 0, type 1. */
    static const uint8_t ck[] = {0x00, 0x00, 0x00, 0x01};
    static const uint8_t cv[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    gr_bytes mk = {ck, sizeof ck}, mv = {cv, sizeof cv};
    append_raw(p->log, &mk, &mv, 1, GR_CODEC_NONE,
               GR_BATCH_ATTR_TRANSACTIONAL | GR_BATCH_ATTR_CONTROL, 1000);
    append_raw(p->log, &k, &v, 1, GR_CODEC_NONE, 0, -1);
    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 1);
    assert_seen(&s, 0, &rec, 2);
    ck_assert_int_eq(gr_test_logged("skipping"), 0);
    close_partition(p);
}
END_TEST

START_TEST(load_bounds)
{
    gr_partition *p = open_partition();
    gr_offsets_record recs[3] = {offset_rec("g", "t", 0, 1, ""), offset_rec("g", "t", 1, 2, ""),
                                 offset_rec("g", "t", 2, 3, "")};
    for (int i = 0; i < 3; i++) /* offsets 0-2, 3-5, 6-8 */
        ck_assert_int_eq(gr_offsets_append(p, recs, 3, T0, NULL), GR_NONE);

    /* At a batch boundary. */
    seen s = {0};
    ck_assert_int_eq(gr_offsets_load(p->log, 6, collect, &s), GR_LOG_OK);
    ck_assert_int_eq(s.n, 6);
    ck_assert_int_eq(s.offset[5], 5);
    /* Inside a batch: the records from end_offset on are not visited. */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(gr_offsets_load(p->log, 4, collect, &s), GR_LOG_OK);
    ck_assert_int_eq(s.n, 4);
    assert_seen(&s, 3, &recs[0], 3);
    /* Nothing. */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(gr_offsets_load(p->log, 0, collect, &s), GR_LOG_OK);
    ck_assert_int_eq(s.n, 0);

    /* From the log start offset, even inside a batch. */
    ck_assert_int_eq(gr_log_delete_records(p->log, 4, T0), GR_LOG_OK);
    load_all(p, &s);
    ck_assert_int_eq(s.n, 5);
    assert_seen(&s, 0, &recs[1], 4);
    assert_seen(&s, 4, &recs[2], 8);
    close_partition(p);
}
END_TEST

START_TEST(load_across_segments)
{
    gr_partition *p = open_partition();
    gr_offsets_record rec = group_rec("segmented", 1);
    for (int i = 0; i < 5; i++) {
        rec.value.generation = i;
        ck_assert_int_eq(gr_offsets_append(p, &rec, 1, T0, NULL), GR_NONE);
        ck_assert_int_eq(gr_log_roll(p->log, T0), GR_LOG_OK);
    }
    ck_assert_int_ge(gr_log_segment_count(p->log), 5);
    seen s;
    load_all(p, &s);
    ck_assert_int_eq(s.n, 5);
    for (int i = 0; i < 5; i++) {
        rec.value.generation = i;
        assert_seen(&s, i, &rec, i);
    }
    close_partition(p);
}
END_TEST

Suite *offsets_log_suite(void)
{
    Suite *s = suite_create("offsets_log");
    TCase *tc = tcase_create("encoding");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, golden_offset_commit);
    tcase_add_test(tc, golden_offset_commit_with_expire);
    tcase_add_test(tc, golden_group_metadata);
    tcase_add_test(tc, golden_tombstones);
    tcase_add_test(tc, encode_refuses_what_has_no_encoding);
    suite_add_tcase(s, tc);

    tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, append_and_load_every_kind);
    tcase_add_test(tc, append_errors);
    tcase_add_test(tc, append_split_across_batches);
    tcase_add_test(tc, unknown_kinds_skipped_quietly);
    tcase_add_test(tc, damaged_records_skipped);
    tcase_add_test(tc, batch_damaged_on_disk_skipped);
    tcase_add_test(tc, batch_with_records_cut_short);
    tcase_add_test(tc, warnings_bounded);
    tcase_add_test(tc, random_bytes_never_crash);
    tcase_add_test(tc, compressed_batches_loaded);
    tcase_add_test(tc, control_and_transactional_batches_skipped);
    tcase_add_test(tc, load_bounds);
    tcase_add_test(tc, load_across_segments);
    suite_add_tcase(s, tc);
    return s;
}
