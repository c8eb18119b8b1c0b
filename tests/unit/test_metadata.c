/*
 * test_metadata.c - common/metadata: the metadata image driven by encoded
 * metadata frames, as the log hands them over: topics and partitions,
 * partition changes and their epochs, topic removal, broker registration
 * and fencing, configs, features, producer ids, many topics, snapshots
 * and malformed frames.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metadata.h"
#include "tests/unit/suites.h"

/* ---- helpers ---- */

static int64_t next_offset;

static uint8_t *encode_frame(int16_t type, int16_t version, const void *m, size_t *len)
{
    gr_writer w;
    gr_writer_init(&w, 64);
    ck_assert_int_eq(gr_metadata_record_encode(type, version, m, &w), GR_OK);
    ck_assert(gr_writer_ok(&w));
    ck_assert_uint_eq(w.len, gr_metadata_record_size(type, version, m));
    return gr_writer_take(&w, len);
}

/* Encodes the record and applies the frame at the next offset. */
static int apply_v(gr_metadata_image *img, int16_t type, int16_t version, const void *m)
{
    size_t len;
    uint8_t *f = encode_frame(type, version, m, &len);
    int err = gr_metadata_apply(img, f, len, next_offset, 3);
    if (err == GR_METADATA_OK)
        next_offset++;
    free(f);
    return err;
}

static int apply(gr_metadata_image *img, int16_t type, const void *m)
{
    return apply_v(img, type, gr_metadata_record_lookup(type)->max_version, m);
}

static gr_uuid mkid(uint32_t n)
{
    gr_uuid u;
    memset(&u, 0, sizeof u);
    u.b[0] = 0x5a;
    u.b[12] = (uint8_t)(n >> 24);
    u.b[13] = (uint8_t)(n >> 16);
    u.b[14] = (uint8_t)(n >> 8);
    u.b[15] = (uint8_t)n;
    return u;
}

static int add_topic(gr_metadata_image *img, const char *name, uint32_t id)
{
    gr_topic_record r;
    gr_topic_record_init(&r);
    r.name = gr_str_from(name);
    r.topic_id = mkid(id);
    return apply(img, GR_METADATA_RECORD_TOPIC, &r);
}

/* Partition p of topic id with replicas {leader, leader+1, leader+2}, all in the ISR. */
static int add_partition(gr_metadata_image *img, uint32_t id, int32_t p, int32_t leader)
{
    int32_t reps[3] = {leader, leader + 1, leader + 2};
    gr_partition_record r;
    gr_partition_record_init(&r);
    r.partition_id = p;
    r.topic_id = mkid(id);
    r.replicas = reps;
    r.replicas_count = 3;
    r.isr = reps;
    r.isr_count = 3;
    r.leader = leader;
    r.leader_epoch = 0;
    r.partition_epoch = 0;
    return apply(img, GR_METADATA_RECORD_PARTITION, &r);
}

static int register_broker(gr_metadata_image *img, int32_t id, int64_t epoch, uint32_t inc,
                           const char *host, uint16_t port)
{
    gr_register_broker_record_broker_endpoint ep = {gr_str_from("PLAINTEXT"),
                                                    gr_str_from(host), port, 0};
    gr_register_broker_record_broker_feature feat = {gr_str_from("metadata.version"), 7, 25};
    gr_register_broker_record r;
    gr_register_broker_record_init(&r);
    r.broker_id = id;
    r.incarnation_id = mkid(inc);
    r.broker_epoch = epoch;
    r.end_points = &ep;
    r.end_points_count = 1;
    r.features = &feat;
    r.features_count = 1;
    r.rack = gr_str_from(id % 2 ? "rack-a" : NULL);
    return apply(img, GR_METADATA_RECORD_REGISTER_BROKER, &r);
}

static int set_config(gr_metadata_image *img, int8_t type, const char *res, const char *key,
                      const char *value)
{
    gr_config_record r;
    gr_config_record_init(&r);
    r.resource_type = type;
    r.resource_name = gr_str_from(res);
    r.name = gr_str_from(key);
    r.value = gr_str_from(value);
    return apply(img, GR_METADATA_RECORD_CONFIG, &r);
}

static int collect(void *ctx, const uint8_t *frame, size_t len)
{
    gr_writer *w = ctx; /* uvarint length, frame */
    gr_write_uvarint(w, (uint32_t)len);
    gr_write_raw(w, frame, len);
    return gr_writer_ok(w) ? 0 : -1;
}

/* A fresh image built from img's snapshot. */
static gr_metadata_image *clone_image(const gr_metadata_image *img)
{
    gr_writer w;
    gr_writer_init(&w, 1024);
    ck_assert_int_eq(gr_metadata_image_write(img, collect, &w), 0);
    gr_metadata_image *c = gr_metadata_image_new();
    ck_assert_ptr_nonnull(c);
    gr_reader r;
    gr_reader_init(&r, w.p, w.len);
    while (gr_reader_remaining(&r) > 0) {
        uint32_t n;
        const uint8_t *f;
        ck_assert_int_eq(gr_read_uvarint(&r, &n), GR_OK);
        ck_assert_int_eq(gr_read_raw(&r, n, &f), GR_OK);
        ck_assert_int_eq(gr_metadata_apply(c, f, n, 100, 2), GR_METADATA_OK);
    }
    gr_writer_free(&w);
    return c;
}

static bool str_is(gr_str s, const char *c)
{
    return s.len >= 0 && (size_t)s.len == strlen(c) && memcmp(s.ptr, c, strlen(c)) == 0;
}

static gr_metadata_image *img;

static void setup(void)
{
    next_offset = 0;
    img = gr_metadata_image_new();
    ck_assert_ptr_nonnull(img);
}

static void teardown(void) { gr_metadata_image_free(img); }

/* ---- topics and partitions ---- */

START_TEST(test_topic_create)
{
    ck_assert_int_eq(gr_metadata_last_offset(img), -1);
    ck_assert_int_eq(add_topic(img, "orders", 1), GR_METADATA_OK);
    for (int p = 2; p >= 0; p--) /* out of order: kept sorted */
        ck_assert_int_eq(add_partition(img, 1, p, 10 + p), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_last_offset(img), 3);
    ck_assert_int_eq(gr_metadata_last_epoch(img), 3);

    const gr_metadata_topic *t = gr_metadata_topic_by_name(img, gr_str_from("orders"));
    ck_assert_ptr_nonnull(t);
    gr_uuid id = mkid(1);
    ck_assert_ptr_eq(gr_metadata_topic_by_id(img, &id), t);
    ck_assert(str_is(t->name, "orders"));
    ck_assert_int_eq(t->partition_count, 3);
    for (int p = 0; p < 3; p++) {
        const gr_metadata_partition *part = gr_metadata_partition_get(t, p);
        ck_assert_ptr_eq(part, &t->partitions[p]);
        ck_assert_int_eq(part->id, p);
        ck_assert_int_eq(part->leader, 10 + p);
        ck_assert_int_eq(part->replicas.count, 3);
        ck_assert_int_eq(part->replicas.ids[2], 12 + p);
        ck_assert_int_eq(part->isr.count, 3);
        ck_assert_int_eq(part->removing.count, 0);
        ck_assert_int_eq(part->leader_epoch, 0);
        ck_assert_int_eq(part->partition_epoch, 0);
    }
    ck_assert_ptr_null(gr_metadata_partition_get(t, 3));
    ck_assert_ptr_null(gr_metadata_topic_by_name(img, gr_str_from("order")));
    gr_uuid other = mkid(2);
    ck_assert_ptr_null(gr_metadata_topic_by_id(img, &other));
    ck_assert_uint_eq(gr_metadata_topic_count(img), 1);
    ck_assert_ptr_eq(gr_metadata_topic_at(img, 0), t);
    ck_assert_ptr_null(gr_metadata_topic_at(img, 1));

    /* Duplicate name, duplicate id, partition of an unknown topic: refused, nothing changes. */
    gr_metadata_image *before = clone_image(img);
    ck_assert_int_eq(add_topic(img, "orders", 2), GR_METADATA_ERR_INVALID);
    ck_assert_int_eq(add_topic(img, "payments", 1), GR_METADATA_ERR_INVALID);
    ck_assert_int_eq(add_partition(img, 9, 0, 1), GR_METADATA_ERR_INVALID);
    ck_assert_int_eq(add_partition(img, 1, -1, 1), GR_METADATA_ERR_INVALID);
    ck_assert(gr_metadata_image_equal(img, before));
    ck_assert_int_eq(gr_metadata_last_offset(img), 3);
    gr_metadata_image_free(before);

    /* A PartitionRecord for an existing partition replaces it. */
    ck_assert_int_eq(add_partition(img, 1, 1, 40), GR_METADATA_OK);
    t = gr_metadata_topic_by_name(img, gr_str_from("orders"));
    ck_assert_int_eq(t->partition_count, 3);
    ck_assert_int_eq(gr_metadata_partition_get(t, 1)->leader, 40);
}
END_TEST

static const gr_metadata_partition *part0(void)
{
    gr_uuid id = mkid(7);
    const gr_metadata_topic *t = gr_metadata_topic_by_id(img, &id);
    ck_assert_ptr_nonnull(t);
    return gr_metadata_partition_get(t, 0);
}

static gr_partition_change_record change0(void)
{
    gr_partition_change_record r;
    gr_partition_change_record_init(&r);
    r.topic_id = mkid(7);
    r.partition_id = 0;
    return r;
}

START_TEST(test_partition_change)
{
    ck_assert_int_eq(add_topic(img, "t", 7), GR_METADATA_OK);
    ck_assert_int_eq(add_partition(img, 7, 0, 1), GR_METADATA_OK); /* replicas 1,2,3 */
    ck_assert_int_eq(add_partition(img, 7, 1, 1), GR_METADATA_OK);

    /* The defaults: leader -2 and null arrays, "no change". */
    gr_partition_change_record r = change0();
    ck_assert_int_eq(r.leader, -2);
    ck_assert_int_eq(r.isr_count, -1);
    ck_assert_int_eq(r.leader_recovery_state, -1);

    /* ISR only: leader and leader epoch stay, partition epoch moves. */
    int32_t isr[2] = {1, 3};
    r.isr = isr;
    r.isr_count = 2;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_OK);
    const gr_metadata_partition *p = part0();
    ck_assert_int_eq(p->leader, 1);
    ck_assert_int_eq(p->leader_epoch, 0);
    ck_assert_int_eq(p->partition_epoch, 1);
    ck_assert_int_eq(p->isr.count, 2);
    ck_assert_int_eq(p->isr.ids[1], 3);
    ck_assert_int_eq(p->replicas.count, 3);

    /* New leader: leader epoch and partition epoch both move; ISR untouched. */
    r = change0();
    r.leader = 3;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_OK);
    p = part0();
    ck_assert_int_eq(p->leader, 3);
    ck_assert_int_eq(p->leader_epoch, 1);
    ck_assert_int_eq(p->partition_epoch, 2);
    ck_assert_int_eq(p->isr.count, 2);

    /* Naming the same leader again is still a leader change (Kafka bumps the epoch). */
    r = change0();
    r.leader = 3;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_OK);
    ck_assert_int_eq(part0()->leader_epoch, 2);
    ck_assert_int_eq(part0()->partition_epoch, 3);

    /* -1: no leader now; the epoch still moves. */
    r = change0();
    r.leader = -1;
    int32_t empty_isr[1] = {0};
    r.isr = empty_isr;
    r.isr_count = 0;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_OK);
    p = part0();
    ck_assert_int_eq(p->leader, -1);
    ck_assert_int_eq(p->leader_epoch, 3);
    ck_assert_int_eq(p->partition_epoch, 4);
    ck_assert_int_eq(p->isr.count, 0);

    /* An empty change (everything default) only bumps the partition epoch. */
    r = change0();
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_OK);
    p = part0();
    ck_assert_int_eq(p->leader, -1);
    ck_assert_int_eq(p->leader_epoch, 3);
    ck_assert_int_eq(p->partition_epoch, 5);

    /* Reassignment fields, leader recovery state and ELR (v2). */
    int32_t reps[4] = {1, 2, 3, 4}, adding[1] = {4}, elr[1] = {2};
    r = change0();
    r.replicas = reps;
    r.replicas_count = 4;
    r.adding_replicas = adding;
    r.adding_replicas_count = 1;
    r.leader = 2;
    r.leader_recovery_state = 1;
    r.eligible_leader_replicas = elr;
    r.eligible_leader_replicas_count = 1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_OK);
    p = part0();
    ck_assert_int_eq(p->replicas.count, 4);
    ck_assert_int_eq(p->adding.count, 1);
    ck_assert_int_eq(p->adding.ids[0], 4);
    ck_assert_int_eq(p->removing.count, 0);
    ck_assert_int_eq(p->leader, 2);
    ck_assert_int_eq(p->leader_epoch, 4);
    ck_assert_int_eq(p->partition_epoch, 6);
    ck_assert_int_eq(p->leader_recovery_state, 1);
    ck_assert_int_eq(p->elr.count, 1);
    ck_assert_int_eq(p->isr.count, 0);

    /* The other partition saw none of it. */
    gr_uuid id = mkid(7);
    const gr_metadata_partition *p1 = gr_metadata_partition_get(gr_metadata_topic_by_id(img, &id), 1);
    ck_assert_int_eq(p1->partition_epoch, 0);
    ck_assert_int_eq(p1->leader_epoch, 0);

    /* Unknown partition or topic, leader below -2, bad recovery state: refused, unchanged. */
    gr_metadata_image *before = clone_image(img);
    r = change0();
    r.partition_id = 2;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_ERR_INVALID);
    r = change0();
    r.topic_id = mkid(8);
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_ERR_INVALID);
    r = change0();
    r.leader = -3;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_ERR_INVALID);
    r = change0();
    r.leader_recovery_state = 2;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r), GR_METADATA_ERR_INVALID);
    ck_assert(gr_metadata_image_equal(img, before));
    gr_metadata_image_free(before);

    /* The same change applied through the typed API. */
    r = change0();
    r.leader = 1;
    ck_assert_int_eq(gr_metadata_apply_partition_change(img, &r), GR_METADATA_OK);
    ck_assert_int_eq(part0()->leader_epoch, 5);
}
END_TEST

START_TEST(test_remove_topic)
{
    for (uint32_t i = 1; i <= 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "topic-%u", i);
        ck_assert_int_eq(add_topic(img, name, i), GR_METADATA_OK);
        ck_assert_int_eq(add_partition(img, i, 0, 1), GR_METADATA_OK);
        ck_assert_int_eq(set_config(img, GR_METADATA_RESOURCE_TOPIC, name, "retention.ms", "1000"),
                         GR_METADATA_OK);
    }
    ck_assert_int_eq(set_config(img, GR_METADATA_RESOURCE_BROKER, "topic-2", "x", "y"),
                     GR_METADATA_OK);

    gr_remove_topic_record r;
    gr_remove_topic_record_init(&r);
    r.topic_id = mkid(2);
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_REMOVE_TOPIC, &r), GR_METADATA_OK);
    ck_assert_ptr_null(gr_metadata_topic_by_name(img, gr_str_from("topic-2")));
    ck_assert_ptr_null(gr_metadata_topic_by_id(img, &r.topic_id));
    ck_assert_uint_eq(gr_metadata_topic_count(img), 4);
    /* Its topic configs went with it; a broker resource of the same name did not. */
    ck_assert_ptr_null(gr_metadata_config_resource_get(img, GR_METADATA_RESOURCE_TOPIC,
                                                       gr_str_from("topic-2")));
    ck_assert(str_is(gr_metadata_config(img, GR_METADATA_RESOURCE_BROKER, gr_str_from("topic-2"), "x"),
                     "y"));
    /* Every other topic is still found both ways and by iteration. */
    int seen = 0;
    for (size_t i = 0; i < gr_metadata_topic_count(img); i++) {
        const gr_metadata_topic *t = gr_metadata_topic_at(img, i);
        ck_assert_ptr_eq(gr_metadata_topic_by_name(img, t->name), t);
        ck_assert_ptr_eq(gr_metadata_topic_by_id(img, &t->id), t);
        ck_assert(!str_is(t->name, "topic-2"));
        seen++;
    }
    ck_assert_int_eq(seen, 4);
    ck_assert(str_is(gr_metadata_config(img, GR_METADATA_RESOURCE_TOPIC, gr_str_from("topic-5"),
                                        "retention.ms"),
                     "1000"));

    /* Removing it again is refused; the name can be reused with a new id. */
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_REMOVE_TOPIC, &r), GR_METADATA_ERR_INVALID);
    ck_assert_int_eq(add_topic(img, "topic-2", 20), GR_METADATA_OK);
    const gr_metadata_topic *t = gr_metadata_topic_by_name(img, gr_str_from("topic-2"));
    ck_assert_int_eq(t->partition_count, 0);
    ck_assert_ptr_null(gr_metadata_config_resource_get(img, GR_METADATA_RESOURCE_TOPIC,
                                                       gr_str_from("topic-2")));
}
END_TEST

/* ---- brokers ---- */

START_TEST(test_brokers)
{
    ck_assert_int_eq(register_broker(img, 3, 100, 1, "h3", 9093), GR_METADATA_OK);
    ck_assert_int_eq(register_broker(img, 1, 101, 2, "h1", 9091), GR_METADATA_OK);
    ck_assert_int_eq(register_broker(img, 2, 102, 3, "h2", 9092), GR_METADATA_OK);
    ck_assert_uint_eq(gr_metadata_broker_count(img), 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(gr_metadata_broker_at(img, i)->id, (int)i + 1);
    ck_assert_ptr_null(gr_metadata_broker_at(img, 3));

    const gr_metadata_broker *b = gr_metadata_broker_get(img, 1);
    ck_assert_ptr_nonnull(b);
    ck_assert(b->fenced); /* a registration starts fenced by default */
    ck_assert(!b->in_controlled_shutdown);
    ck_assert_int_eq(b->epoch, 101);
    ck_assert_int_eq(b->endpoint_count, 1);
    ck_assert(str_is(b->endpoints[0].name, "PLAINTEXT"));
    ck_assert(str_is(b->endpoints[0].host, "h1"));
    ck_assert_int_eq(b->endpoints[0].port, 9091);
    ck_assert(str_is(b->rack, "rack-a"));
    ck_assert_int_eq(gr_metadata_broker_get(img, 2)->rack.len, -1);
    ck_assert_int_eq(b->feature_count, 1);
    ck_assert_int_eq(b->features[0].max_version, 25);
    ck_assert_ptr_null(gr_metadata_broker_get(img, 4));

    /* Unfence needs the current epoch. */
    gr_unfence_broker_record u;
    gr_unfence_broker_record_init(&u);
    u.id = 1;
    u.epoch = 100;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNFENCE_BROKER, &u), GR_METADATA_ERR_INVALID);
    ck_assert(gr_metadata_broker_get(img, 1)->fenced);
    u.epoch = 101;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNFENCE_BROKER, &u), GR_METADATA_OK);
    ck_assert(!gr_metadata_broker_get(img, 1)->fenced);
    u.id = 9;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNFENCE_BROKER, &u), GR_METADATA_ERR_INVALID);

    gr_fence_broker_record f;
    gr_fence_broker_record_init(&f);
    f.id = 1;
    f.epoch = 5;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_FENCE_BROKER, &f), GR_METADATA_ERR_INVALID);
    ck_assert(!gr_metadata_broker_get(img, 1)->fenced);
    f.epoch = 101;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_FENCE_BROKER, &f), GR_METADATA_OK);
    ck_assert(gr_metadata_broker_get(img, 1)->fenced);

    /* BrokerRegistrationChangeRecord: -1 unfences, 0 keeps, 1 fences; controlled shutdown. */
    gr_broker_registration_change_record c;
    gr_broker_registration_change_record_init(&c);
    c.broker_id = 1;
    c.broker_epoch = 101;
    c.fenced = -1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE, &c), GR_METADATA_OK);
    ck_assert(!gr_metadata_broker_get(img, 1)->fenced);
    c.fenced = 0;
    c.in_controlled_shutdown = 1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE, &c), GR_METADATA_OK);
    b = gr_metadata_broker_get(img, 1);
    ck_assert(!b->fenced);
    ck_assert(b->in_controlled_shutdown);
    c.fenced = 2;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE, &c),
                     GR_METADATA_ERR_INVALID);
    c.fenced = 1;
    c.broker_epoch = 99;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE, &c),
                     GR_METADATA_ERR_INVALID);
    ck_assert(!gr_metadata_broker_get(img, 1)->fenced);

    /* Re-registration: a new incarnation replaces the old one, fenced again. */
    ck_assert_int_eq(register_broker(img, 1, 200, 9, "new-host", 19091), GR_METADATA_OK);
    ck_assert_uint_eq(gr_metadata_broker_count(img), 3);
    b = gr_metadata_broker_get(img, 1);
    ck_assert_int_eq(b->epoch, 200);
    gr_uuid inc = mkid(9);
    ck_assert_mem_eq(b->incarnation_id.b, inc.b, 16);
    ck_assert(str_is(b->endpoints[0].host, "new-host"));
    ck_assert(b->fenced);
    ck_assert(!b->in_controlled_shutdown);
    f.epoch = 101; /* the old epoch no longer matches */
    u.id = 1;
    u.epoch = 101;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNFENCE_BROKER, &u), GR_METADATA_ERR_INVALID);
    u.epoch = 200;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNFENCE_BROKER, &u), GR_METADATA_OK);

    /* A registration that says it is not fenced. */
    gr_register_broker_record reg;
    gr_register_broker_record_init(&reg);
    reg.broker_id = 7;
    reg.broker_epoch = 300;
    reg.fenced = false;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_REGISTER_BROKER, &reg), GR_METADATA_OK);
    ck_assert(!gr_metadata_broker_get(img, 7)->fenced);
    ck_assert_int_eq(gr_metadata_broker_get(img, 7)->endpoint_count, 0);

    /* Unregister needs the epoch too. */
    gr_unregister_broker_record un;
    gr_unregister_broker_record_init(&un);
    un.broker_id = 2;
    un.broker_epoch = 1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNREGISTER_BROKER, &un), GR_METADATA_ERR_INVALID);
    un.broker_epoch = 102;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNREGISTER_BROKER, &un), GR_METADATA_OK);
    ck_assert_ptr_null(gr_metadata_broker_get(img, 2));
    ck_assert_uint_eq(gr_metadata_broker_count(img), 3);
    ck_assert_int_eq(gr_metadata_broker_at(img, 0)->id, 1);
    ck_assert_int_eq(gr_metadata_broker_at(img, 1)->id, 3);
    ck_assert_int_eq(gr_metadata_broker_at(img, 2)->id, 7);
}
END_TEST

/* ---- configs, features, producer ids ---- */

START_TEST(test_configs)
{
    const int8_t T = GR_METADATA_RESOURCE_TOPIC, B = GR_METADATA_RESOURCE_BROKER;
    ck_assert_int_eq(set_config(img, T, "orders", "retention.ms", "100"), GR_METADATA_OK);
    ck_assert_int_eq(set_config(img, T, "orders", "cleanup.policy", "compact"), GR_METADATA_OK);
    ck_assert_int_eq(set_config(img, B, "", "log.retention.hours", "1"), GR_METADATA_OK);
    ck_assert_int_eq(set_config(img, B, "1", "log.retention.hours", "2"), GR_METADATA_OK);

    gr_str orders = gr_str_from("orders");
    ck_assert(str_is(gr_metadata_config(img, T, orders, "retention.ms"), "100"));
    ck_assert(str_is(gr_metadata_config(img, T, orders, "cleanup.policy"), "compact"));
    ck_assert_int_eq(gr_metadata_config(img, T, orders, "segment.ms").len, -1);
    ck_assert_int_eq(gr_metadata_config(img, B, orders, "retention.ms").len, -1);
    ck_assert(str_is(gr_metadata_config(img, B, gr_str_from(""), "log.retention.hours"), "1"));
    ck_assert(str_is(gr_metadata_config(img, B, gr_str_from("1"), "log.retention.hours"), "2"));

    /* Overwrite, then delete with a null value. */
    ck_assert_int_eq(set_config(img, T, "orders", "retention.ms", "200"), GR_METADATA_OK);
    ck_assert(str_is(gr_metadata_config(img, T, orders, "retention.ms"), "200"));
    const gr_metadata_config_resource *res = gr_metadata_config_resource_get(img, T, orders);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(res->count, 2);
    ck_assert_int_eq(set_config(img, T, "orders", "retention.ms", NULL), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_config(img, T, orders, "retention.ms").len, -1);
    res = gr_metadata_config_resource_get(img, T, orders);
    ck_assert_int_eq(res->count, 1);
    ck_assert(str_is(res->entries[0].key, "cleanup.policy"));
    /* Deleting what is not set is fine and changes nothing. */
    ck_assert_int_eq(set_config(img, T, "orders", "retention.ms", NULL), GR_METADATA_OK);
    ck_assert_int_eq(set_config(img, T, "nope", "retention.ms", NULL), GR_METADATA_OK);
    ck_assert_ptr_null(gr_metadata_config_resource_get(img, T, gr_str_from("nope")));
    /* The last key gone, the resource is gone. */
    ck_assert_int_eq(set_config(img, T, "orders", "cleanup.policy", NULL), GR_METADATA_OK);
    ck_assert_ptr_null(gr_metadata_config_resource_get(img, T, orders));
    /* An empty value is a value, not a deletion. */
    ck_assert_int_eq(set_config(img, T, "orders", "x", ""), GR_METADATA_OK);
    ck_assert(str_is(gr_metadata_config(img, T, orders, "x"), ""));
    /* Resource type 0 (UNKNOWN) is refused. */
    ck_assert_int_eq(set_config(img, 0, "orders", "x", "1"), GR_METADATA_ERR_INVALID);
}
END_TEST

START_TEST(test_features_and_producer_ids)
{
    gr_feature_level_record f;
    gr_feature_level_record_init(&f);
    f.name = gr_str_from("metadata.version");
    f.feature_level = 21;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_FEATURE_LEVEL, &f), GR_METADATA_OK);
    f.name = gr_str_from("kraft.version");
    f.feature_level = 1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_FEATURE_LEVEL, &f), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_feature_level(img, "metadata.version"), 21);
    ck_assert_int_eq(gr_metadata_feature_level(img, "kraft.version"), 1);
    ck_assert_int_eq(gr_metadata_feature_level(img, "group.version"), 0);
    ck_assert_uint_eq(gr_metadata_feature_count(img), 2);
    ck_assert(str_is(gr_metadata_feature_at(img, 0)->name, "kraft.version")); /* sorted */
    f.feature_level = 0; /* level 0 removes */
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_FEATURE_LEVEL, &f), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_feature_level(img, "kraft.version"), 0);
    ck_assert_uint_eq(gr_metadata_feature_count(img), 1);

    ck_assert_int_eq(gr_metadata_next_producer_id(img), -1);
    gr_producer_ids_record p;
    gr_producer_ids_record_init(&p);
    p.broker_id = 1;
    p.broker_epoch = 5;
    p.next_producer_id = 1000;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PRODUCER_IDS, &p), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_next_producer_id(img), 1000);
    p.next_producer_id = 1000; /* blocks only move forward */
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PRODUCER_IDS, &p), GR_METADATA_ERR_INVALID);
    p.next_producer_id = 2000;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PRODUCER_IDS, &p), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_next_producer_id(img), 2000);

    /* NoOp moves only the position. */
    gr_metadata_image *before = clone_image(img);
    int64_t off = gr_metadata_last_offset(img);
    gr_no_op_record n;
    gr_no_op_record_init(&n);
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_NO_OP, &n), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_last_offset(img), off + 1);
    ck_assert(gr_metadata_image_equal(img, before));
    gr_metadata_image_free(before);
}
END_TEST

/* ---- scale ---- */

START_TEST(test_many_topics)
{
    enum { N = 10000 };
    char name[32];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "topic-%05u", i);
        ck_assert_int_eq(add_topic(img, name, i + 1), GR_METADATA_OK);
        ck_assert_int_eq(add_partition(img, i + 1, 0, (int32_t)(i % 5)), GR_METADATA_OK);
    }
    ck_assert_uint_eq(gr_metadata_topic_count(img), N);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "topic-%05u", i);
        gr_uuid id = mkid(i + 1);
        const gr_metadata_topic *t = gr_metadata_topic_by_name(img, gr_str_from(name));
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_eq(gr_metadata_topic_by_id(img, &id), t);
        ck_assert_int_eq(t->partitions[0].leader, (int32_t)(i % 5));
    }
    /* Remove every third topic; the rest stay reachable, the removed do not. */
    gr_remove_topic_record r;
    gr_remove_topic_record_init(&r);
    for (uint32_t i = 0; i < N; i += 3) {
        r.topic_id = mkid(i + 1);
        ck_assert_int_eq(apply(img, GR_METADATA_RECORD_REMOVE_TOPIC, &r), GR_METADATA_OK);
    }
    size_t left = 0;
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "topic-%05u", i);
        gr_uuid id = mkid(i + 1);
        const gr_metadata_topic *t = gr_metadata_topic_by_name(img, gr_str_from(name));
        if (i % 3 == 0) {
            ck_assert_ptr_null(t);
            ck_assert_ptr_null(gr_metadata_topic_by_id(img, &id));
        } else {
            ck_assert_ptr_nonnull(t);
            ck_assert_ptr_eq(gr_metadata_topic_by_id(img, &id), t);
            left++;
        }
    }
    ck_assert_uint_eq(gr_metadata_topic_count(img), left);
    gr_metadata_image *c = clone_image(img);
    ck_assert(gr_metadata_image_equal(img, c));
    gr_metadata_image_free(c);
}
END_TEST

/* ---- snapshots ---- */

static void build_rich_image(void)
{
    gr_feature_level_record f;
    gr_feature_level_record_init(&f);
    f.name = gr_str_from("metadata.version");
    f.feature_level = 21;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_FEATURE_LEVEL, &f), GR_METADATA_OK);
    for (int32_t b = 1; b <= 3; b++)
        ck_assert_int_eq(register_broker(img, b, 10 * b, (uint32_t)b, "host", (uint16_t)(9090 + b)),
                         GR_METADATA_OK);
    gr_unfence_broker_record u;
    gr_unfence_broker_record_init(&u);
    u.id = 2;
    u.epoch = 20;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_UNFENCE_BROKER, &u), GR_METADATA_OK);
    gr_broker_registration_change_record c;
    gr_broker_registration_change_record_init(&c);
    c.broker_id = 3;
    c.broker_epoch = 30;
    c.in_controlled_shutdown = 1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_BROKER_REGISTRATION_CHANGE, &c), GR_METADATA_OK);

    ck_assert_int_eq(add_topic(img, "a", 1), GR_METADATA_OK);
    ck_assert_int_eq(add_topic(img, "b", 2), GR_METADATA_OK);
    for (int32_t p = 0; p < 4; p++)
        ck_assert_int_eq(add_partition(img, 1, p, 1), GR_METADATA_OK);
    ck_assert_int_eq(add_partition(img, 2, 0, 2), GR_METADATA_OK);
    gr_partition_change_record pc;
    gr_partition_change_record_init(&pc);
    pc.topic_id = mkid(1);
    pc.partition_id = 2;
    pc.leader = 3;
    int32_t removing[1] = {1}, elr[2] = {1, 2}, lke[1] = {3};
    pc.removing_replicas = removing;
    pc.removing_replicas_count = 1;
    pc.eligible_leader_replicas = elr;
    pc.eligible_leader_replicas_count = 2;
    pc.last_known_elr = lke;
    pc.last_known_elr_count = 1;
    pc.leader_recovery_state = 1;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &pc), GR_METADATA_OK);

    ck_assert_int_eq(set_config(img, GR_METADATA_RESOURCE_TOPIC, "a", "retention.ms", "5"),
                     GR_METADATA_OK);
    ck_assert_int_eq(set_config(img, GR_METADATA_RESOURCE_TOPIC, "a", "segment.bytes", "1024"),
                     GR_METADATA_OK);
    ck_assert_int_eq(set_config(img, GR_METADATA_RESOURCE_BROKER, "", "num.io.threads", "8"),
                     GR_METADATA_OK);
    gr_producer_ids_record p;
    gr_producer_ids_record_init(&p);
    p.next_producer_id = 5000;
    ck_assert_int_eq(apply(img, GR_METADATA_RECORD_PRODUCER_IDS, &p), GR_METADATA_OK);
}

typedef struct {
    int16_t types[64];
    int n;
} type_list;

static int list_types(void *ctx, const uint8_t *frame, size_t len)
{
    type_list *l = ctx;
    gr_reader r;
    gr_reader_init(&r, frame, len);
    gr_arena a;
    gr_arena_init(&a);
    int16_t type, version;
    void *m;
    ck_assert_int_eq(gr_metadata_record_decode(&r, &a, &type, &version, &m), GR_OK);
    ck_assert_uint_eq(gr_reader_remaining(&r), 0);
    gr_arena_free(&a);
    ck_assert_int_lt(l->n, 64);
    l->types[l->n++] = type;
    return 0;
}

static int stop_after_two(void *ctx, const uint8_t *frame, size_t len)
{
    (void)frame;
    (void)len;
    int *n = ctx;
    return ++*n == 2 ? 42 : 0;
}

START_TEST(test_snapshot_round_trip)
{
    build_rich_image();
    gr_metadata_image *c = clone_image(img);
    ck_assert(gr_metadata_image_equal(img, c));
    ck_assert(gr_metadata_image_equal(c, img));
    /* The copy carries the details, not just the counts. */
    gr_uuid id = mkid(1);
    const gr_metadata_partition *p = gr_metadata_partition_get(gr_metadata_topic_by_id(c, &id), 2);
    ck_assert_int_eq(p->leader, 3);
    ck_assert_int_eq(p->leader_epoch, 1);
    ck_assert_int_eq(p->partition_epoch, 1);
    ck_assert_int_eq(p->elr.count, 2);
    ck_assert_int_eq(p->last_known_elr.count, 1);
    ck_assert_int_eq(p->removing.count, 1);
    ck_assert_int_eq(p->leader_recovery_state, 1);
    ck_assert(!gr_metadata_broker_get(c, 2)->fenced);
    ck_assert(gr_metadata_broker_get(c, 1)->fenced);
    ck_assert(gr_metadata_broker_get(c, 3)->in_controlled_shutdown);
    ck_assert_int_eq(gr_metadata_next_producer_id(c), 5000);

    /* The order: features, brokers, topics each with its partitions, configs, producer ids. */
    type_list l = {.n = 0};
    ck_assert_int_eq(gr_metadata_image_write(img, list_types, &l), 0);
    static const int16_t want[] = {
        GR_METADATA_RECORD_FEATURE_LEVEL, GR_METADATA_RECORD_REGISTER_BROKER,
        GR_METADATA_RECORD_REGISTER_BROKER, GR_METADATA_RECORD_REGISTER_BROKER,
        GR_METADATA_RECORD_TOPIC,          GR_METADATA_RECORD_PARTITION,
        GR_METADATA_RECORD_PARTITION,      GR_METADATA_RECORD_PARTITION,
        GR_METADATA_RECORD_PARTITION,      GR_METADATA_RECORD_TOPIC,
        GR_METADATA_RECORD_PARTITION,      GR_METADATA_RECORD_CONFIG,
        GR_METADATA_RECORD_CONFIG,         GR_METADATA_RECORD_CONFIG,
        GR_METADATA_RECORD_PRODUCER_IDS};
    ck_assert_int_eq(l.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < l.n; i++)
        ck_assert_int_eq(l.types[i], want[i]);

    /* The emitter can stop the walk. */
    int n = 0;
    ck_assert_int_eq(gr_metadata_image_write(img, stop_after_two, &n), 42);
    ck_assert_int_eq(n, 2);

    /* Any difference makes the images unequal. */
    gr_partition_change_record pc;
    gr_partition_change_record_init(&pc);
    pc.topic_id = mkid(2);
    pc.partition_id = 0;
    ck_assert_int_eq(apply(c, GR_METADATA_RECORD_PARTITION_CHANGE, &pc), GR_METADATA_OK);
    ck_assert(!gr_metadata_image_equal(img, c));
    gr_metadata_image_free(c);

    c = clone_image(img);
    ck_assert_int_eq(set_config(c, GR_METADATA_RESOURCE_TOPIC, "a", "retention.ms", "6"),
                     GR_METADATA_OK);
    ck_assert(!gr_metadata_image_equal(img, c));
    gr_metadata_image_free(c);

    c = clone_image(img);
    gr_fence_broker_record f;
    gr_fence_broker_record_init(&f);
    f.id = 2;
    f.epoch = 20;
    ck_assert_int_eq(apply(c, GR_METADATA_RECORD_FENCE_BROKER, &f), GR_METADATA_OK);
    ck_assert(!gr_metadata_image_equal(img, c));
    gr_metadata_image_free(c);

    /* An empty image writes nothing and equals another empty image. */
    gr_metadata_image *e1 = gr_metadata_image_new(), *e2 = gr_metadata_image_new();
    l.n = 0;
    ck_assert_int_eq(gr_metadata_image_write(e1, list_types, &l), 0);
    ck_assert_int_eq(l.n, 0);
    ck_assert(gr_metadata_image_equal(e1, e2));
    ck_assert(!gr_metadata_image_equal(e1, img));
    gr_metadata_image_free(e1);
    gr_metadata_image_free(e2);
}
END_TEST

/* ---- malformed frames ---- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_malformed_frames)
{
    build_rich_image();
    gr_metadata_image *before = clone_image(img);
    int64_t off = gr_metadata_last_offset(img);

    /* Every strict prefix of a valid frame is refused. */
    gr_topic_record t;
    gr_topic_record_init(&t);
    t.name = gr_str_from("new-topic");
    t.topic_id = mkid(77);
    size_t len;
    uint8_t *frame = encode_frame(GR_METADATA_RECORD_TOPIC, 0, &t, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees any over-read */
        memcpy(copy, frame, n);
        int err = gr_metadata_apply(img, copy, n, 999, 9);
        ck_assert_msg(err == GR_METADATA_ERR_DECODE, "prefix %zu: %d", n, err);
        free(copy);
    }
    /* Trailing bytes after the body. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, frame, len);
    longer[len] = 0;
    ck_assert_int_eq(gr_metadata_apply(img, longer, len + 1, 999, 9), GR_METADATA_ERR_DECODE);
    free(longer);

    /* Frame version other than 1. */
    frame[0] = 2;
    ck_assert_int_eq(gr_metadata_apply(img, frame, len, 999, 9), GR_METADATA_ERR_DECODE);
    frame[0] = 1;
    /* Unknown record types (6 is unused, 99 is not defined). */
    frame[1] = 6;
    ck_assert_int_eq(gr_metadata_apply(img, frame, len, 999, 9), GR_METADATA_ERR_VERSION);
    frame[1] = 99;
    ck_assert_int_eq(gr_metadata_apply(img, frame, len, 999, 9), GR_METADATA_ERR_VERSION);
    frame[1] = GR_METADATA_RECORD_TOPIC;
    /* A version the type does not have. */
    frame[2] = 5;
    ck_assert_int_eq(gr_metadata_apply(img, frame, len, 999, 9), GR_METADATA_ERR_VERSION);
    frame[2] = 0;
    /* A length that claims more than the frame holds. */
    frame[3] = 0x7f;
    ck_assert_int_eq(gr_metadata_apply(img, frame, len, 999, 9), GR_METADATA_ERR_DECODE);
    /* Nothing at all. */
    ck_assert_int_eq(gr_metadata_apply(img, NULL, 0, 999, 9), GR_METADATA_ERR_DECODE);

    ck_assert(gr_metadata_image_equal(img, before));
    ck_assert_int_eq(gr_metadata_last_offset(img), off);
    ck_assert_int_eq(gr_metadata_last_epoch(img), 3);

    /* The intact frame still applies. */
    frame[3] = (uint8_t)(t.name.len + 1); /* compact string length */
    ck_assert_int_eq(gr_metadata_apply(img, frame, len, 999, 9), GR_METADATA_OK);
    ck_assert_int_eq(gr_metadata_last_offset(img), 999);
    ck_assert_int_eq(gr_metadata_last_epoch(img), 9);
    ck_assert_ptr_nonnull(gr_metadata_topic_by_name(img, gr_str_from("new-topic")));
    free(frame);
    gr_metadata_image_free(before);

    /* Random bytes never crash and never half-apply: whatever is refused leaves the image as it was. */
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    before = clone_image(img);
    for (int i = 0; i < 2000; i++) {
        uint8_t buf[48];
        size_t n = 4 + (size_t)(i % 44);
        for (size_t k = 0; k < n; k++) {
            buf[k] = (uint8_t)xorshift(&seed);
        }
        buf[0] = 1;
        buf[1] = (uint8_t)(i % 21);
        buf[2] = 0;
        if (gr_metadata_apply(img, buf, n, 1000 + i, 9) == GR_METADATA_OK) {
            gr_metadata_image_free(before);
            before = clone_image(img);
        }
        ck_assert(gr_metadata_image_equal(img, before));
    }
    gr_metadata_image_free(before);
}
END_TEST

/* ---- random operations against snapshot copies ---- */

START_TEST(test_random_ops)
{
    uint64_t s = 12345;
#define RND() xorshift(&s)
    char name[32];
    for (int step = 0; step < 3000; step++) {
        uint32_t id = (uint32_t)(RND() % 64) + 1;
        snprintf(name, sizeof name, "t%u", id);
        switch (RND() % 6) {
        case 0: add_topic(img, name, id); break;
        case 1: add_partition(img, id, (int32_t)(RND() % 8), (int32_t)(RND() % 4)); break;
        case 2: {
            gr_remove_topic_record r;
            gr_remove_topic_record_init(&r);
            r.topic_id = mkid(id);
            apply(img, GR_METADATA_RECORD_REMOVE_TOPIC, &r);
            break;
        }
        case 3: {
            gr_partition_change_record r;
            gr_partition_change_record_init(&r);
            r.topic_id = mkid(id);
            r.partition_id = (int32_t)(RND() % 8);
            r.leader = (int32_t)(RND() % 5) - 2;
            int32_t isr[2] = {1, 2};
            if (RND() % 2) {
                r.isr = isr;
                r.isr_count = (int32_t)(RND() % 3);
            }
            apply(img, GR_METADATA_RECORD_PARTITION_CHANGE, &r);
            break;
        }
        case 4: set_config(img, GR_METADATA_RESOURCE_TOPIC, name, RND() % 2 ? "a" : "b",
                           RND() % 3 ? "v" : NULL);
            break;
        case 5: register_broker(img, (int32_t)(RND() % 6), (int64_t)step, (uint32_t)step, "h", 1);
            break;
        }
        /* Every topic reachable both ways. */
        for (size_t i = 0; i < gr_metadata_topic_count(img); i++) {
            const gr_metadata_topic *t = gr_metadata_topic_at(img, i);
            ck_assert_ptr_eq(gr_metadata_topic_by_name(img, t->name), t);
            ck_assert_ptr_eq(gr_metadata_topic_by_id(img, &t->id), t);
            for (int32_t k = 1; k < t->partition_count; k++)
                ck_assert_int_lt(t->partitions[k - 1].id, t->partitions[k].id);
        }
        if (step % 100 == 99) {
            gr_metadata_image *c = clone_image(img);
            ck_assert(gr_metadata_image_equal(img, c));
            gr_metadata_image_free(c);
        }
    }
#undef RND
}
END_TEST

Suite *metadata_suite(void)
{
    Suite *s = suite_create("metadata");
    TCase *tc = tcase_create("image");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_topic_create);
    tcase_add_test(tc, test_partition_change);
    tcase_add_test(tc, test_remove_topic);
    tcase_add_test(tc, test_brokers);
    tcase_add_test(tc, test_configs);
    tcase_add_test(tc, test_features_and_producer_ids);
    tcase_add_test(tc, test_many_topics);
    tcase_add_test(tc, test_snapshot_round_trip);
    tcase_add_test(tc, test_malformed_frames);
    tcase_add_test(tc, test_random_ops);
    suite_add_tcase(s, tc);
    return s;
}
