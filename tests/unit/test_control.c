/*
 * test_control.c - controller/control: the active controller's decisions,
 * checked by applying the entries it produces (common/mdentry) to a
 * metadata image and looking at the image.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/mdentry.h"
#include "common/metadata.h"
#include "controller/control.h"
#include "tests/unit/suites.h"

static gr_metadata_image *img;
static gr_control *ctl;
static int64_t off; /* offset the next entry gets */
static int64_t now;
static gr_arena ar;
static gr_writer w;
static int64_t epochs[16];

static void setup(void)
{
    img = gr_metadata_image_new();
    ck_assert_ptr_nonnull(img);
    gr_control_config cfg;
    gr_control_config_defaults(&cfg);
    cfg.seed = 42;
    ctl = gr_control_new(img, &cfg);
    ck_assert_ptr_nonnull(ctl);
    off = 0;
    now = 1000000;
    gr_arena_init(&ar);
    gr_writer_init(&w, 0);
    memset(epochs, 0, sizeof epochs);
}

static void teardown(void)
{
    gr_writer_free(&w);
    gr_arena_free(&ar);
    gr_control_free(ctl);
    gr_metadata_image_free(img);
}

/* Applies the pending entry, as the shell does on proposal; true if there was one. */
static bool commit(void)
{
    if (w.len == 0)
        return false;
    int e = gr_mdentry_apply(img, w.p, w.len, off, 1);
    ck_assert_msg(e == 0, "apply: %s", gr_metadata_err_str(e));
    off++;
    gr_writer_free(&w);
    gr_writer_init(&w, 0);
    return true;
}

static gr_uuid incarnation(int32_t id, uint8_t gen)
{
    gr_uuid u = {{0}};
    u.b[0] = (uint8_t)(id + 1);
    u.b[1] = gen;
    return u;
}

static gr_broker_registration_response do_register(int32_t id, const char *rack, uint8_t gen)
{
    static gr_broker_registration_request_listener l;
    gr_broker_registration_request_listener_init(&l);
    l.name = gr_str_from("PLAINTEXT");
    l.host = gr_str_from("localhost");
    l.port = (uint16_t)(9092 + id);
    gr_broker_registration_request req;
    gr_broker_registration_request_init(&req);
    req.broker_id = id;
    req.cluster_id = gr_str_from("cluster");
    req.incarnation_id = incarnation(id, gen);
    req.listeners = &l;
    req.listeners_count = 1;
    req.rack = rack ? gr_str_from(rack) : GR_STR_NULL;
    gr_broker_registration_response resp;
    gr_broker_registration_response_init(&resp);
    ck_assert_int_eq(gr_control_register_broker(ctl, &req, off, now, &ar, &resp, &w), 0);
    commit();
    if (resp.error_code == 0)
        epochs[id] = resp.broker_epoch;
    return resp;
}

static gr_broker_heartbeat_response hb_full(int32_t id, int64_t epoch, bool fence, bool shut)
{
    gr_broker_heartbeat_request req;
    gr_broker_heartbeat_request_init(&req);
    req.broker_id = id;
    req.broker_epoch = epoch;
    req.current_metadata_offset = off - 1;
    req.want_fence = fence;
    req.want_shut_down = shut;
    gr_broker_heartbeat_response resp;
    gr_broker_heartbeat_response_init(&resp);
    ck_assert_int_eq(gr_control_heartbeat(ctl, &req, now, &resp, &w), 0);
    commit();
    return resp;
}

static gr_broker_heartbeat_response hb(int32_t id) { return hb_full(id, epochs[id], false, false); }

/* Brokers 1..n, registered and unfenced. */
static void start_brokers(int n, const char *const *racks)
{
    for (int i = 1; i <= n; i++) {
        gr_broker_registration_response r = do_register(i, racks ? racks[i - 1] : NULL, 0);
        ck_assert_int_eq(r.error_code, 0);
        gr_broker_heartbeat_response h = hb(i);
        ck_assert_int_eq(h.error_code, 0);
        ck_assert(!h.is_fenced);
        ck_assert(h.is_caught_up);
    }
}

static gr_create_topics_response_creatable_topic_result create_full(
    const char *name, int32_t np, int16_t rf, gr_create_topics_request_creatable_replica_assignment *as,
    int32_t nas, gr_create_topics_request_creatable_topic_config *cfgs, int32_t ncfg, bool validate_only)
{
    gr_create_topics_request_creatable_topic t;
    gr_create_topics_request_creatable_topic_init(&t);
    t.name = gr_str_from(name);
    t.num_partitions = np;
    t.replication_factor = rf;
    t.assignments = as;
    t.assignments_count = nas;
    t.configs = cfgs;
    t.configs_count = ncfg;
    gr_create_topics_request req;
    gr_create_topics_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    req.validate_only = validate_only;
    gr_create_topics_response resp;
    gr_create_topics_response_init(&resp);
    ck_assert_int_eq(gr_control_create_topics(ctl, &req, 7, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.topics_count, 1);
    if (validate_only || resp.topics[0].error_code)
        ck_assert_uint_eq(w.len, 0);
    commit();
    return resp.topics[0];
}

static gr_create_topics_response_creatable_topic_result create(const char *name, int32_t np, int16_t rf)
{
    return create_full(name, np, rf, NULL, 0, NULL, 0, false);
}

static const gr_metadata_topic *topic(const char *name)
{
    return gr_metadata_topic_by_name(img, gr_str_from(name));
}

static const gr_metadata_partition *part(const char *name, int32_t p)
{
    const gr_metadata_topic *t = topic(name);
    ck_assert_ptr_nonnull(t);
    const gr_metadata_partition *pp = gr_metadata_partition_get(t, p);
    ck_assert_ptr_nonnull(pp);
    return pp;
}

static bool has(const gr_metadata_ids *l, int32_t id)
{
    for (int32_t i = 0; i < l->count; i++)
        if (l->ids[i] == id)
            return true;
    return false;
}

static bool msg_is(gr_str s, const char *want)
{
    if (!gr_str_eq(s, want)) {
        fprintf(stderr, "got message: %.*s\nwant:        %s\n", (int)(s.len > 0 ? s.len : 0),
                s.ptr ? s.ptr : "", want);
        return false;
    }
    return true;
}

/* ---- brokers ---- */

START_TEST(test_register_and_unfence)
{
    gr_broker_registration_response r = do_register(1, NULL, 0);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.broker_epoch, 0); /* the offset of its RegisterBrokerRecord */
    const gr_metadata_broker *b = gr_metadata_broker_get(img, 1);
    ck_assert_ptr_nonnull(b);
    ck_assert(b->fenced);
    ck_assert_int_eq(b->epoch, 0);

    /* Not caught up yet: stays fenced, no entry. */
    gr_broker_heartbeat_request req;
    gr_broker_heartbeat_request_init(&req);
    req.broker_id = 1;
    req.broker_epoch = 0;
    req.current_metadata_offset = -1;
    gr_broker_heartbeat_response resp;
    gr_broker_heartbeat_response_init(&resp);
    ck_assert_int_eq(gr_control_heartbeat(ctl, &req, now, &resp, &w), 0);
    ck_assert_int_eq(resp.error_code, 0);
    ck_assert(!resp.is_caught_up);
    ck_assert(resp.is_fenced);
    ck_assert_uint_eq(w.len, 0);

    gr_broker_heartbeat_response h = hb(1);
    ck_assert(h.is_caught_up);
    ck_assert(!h.is_fenced);
    ck_assert(!gr_metadata_broker_get(img, 1)->fenced);
    /* A heartbeat while unfenced changes nothing. */
    h = hb(1);
    ck_assert(!h.is_fenced);
    ck_assert(!commit());

    start_brokers(3, NULL); /* broker 1 again: same incarnation, idempotent */
    ck_assert_int_eq(epochs[1], 0);
    ck_assert_uint_eq(gr_metadata_broker_count(img), 3);
    for (int i = 1; i <= 3; i++)
        ck_assert(!gr_metadata_broker_get(img, i)->fenced);
}
END_TEST

START_TEST(test_register_errors)
{
    start_brokers(2, NULL);
    int64_t e1 = epochs[1];
    /* Same incarnation: idempotent, same epoch, no entry. */
    int64_t before = off;
    gr_broker_registration_response r = do_register(1, NULL, 0);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.broker_epoch, e1);
    ck_assert_int_eq(off, before);
    /* New incarnation while the old session lives. */
    r = do_register(1, NULL, 1);
    ck_assert_int_eq(r.error_code, GR_DUPLICATE_BROKER_REGISTRATION);
    ck_assert_int_eq(off, before);
    /* Stale epoch and unknown broker. */
    gr_broker_heartbeat_response h = hb_full(2, epochs[2] + 100, false, false);
    ck_assert_int_eq(h.error_code, GR_STALE_BROKER_EPOCH);
    h = hb_full(9, 0, false, false);
    ck_assert_int_eq(h.error_code, GR_BROKER_ID_NOT_REGISTERED);

    /* Once the session expired (and the broker was fenced), a new incarnation registers. */
    now += 9001;
    hb(2);
    int32_t fenced = 0;
    ck_assert_int_eq(gr_control_tick(ctl, now, &w, &fenced), 0);
    ck_assert_int_eq(fenced, 1);
    commit();
    ck_assert(gr_metadata_broker_get(img, 1)->fenced);
    r = do_register(1, NULL, 1);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_gt(r.broker_epoch, e1);
    ck_assert_int_eq(gr_metadata_broker_get(img, 1)->epoch, r.broker_epoch);
    /* The old epoch is stale now. */
    h = hb_full(1, e1, false, false);
    ck_assert_int_eq(h.error_code, GR_STALE_BROKER_EPOCH);
}
END_TEST

START_TEST(test_cluster_id_checked)
{
    gr_control_free(ctl);
    gr_control_config cfg;
    gr_control_config_defaults(&cfg);
    cfg.cluster_id = "other";
    ctl = gr_control_new(img, &cfg);
    gr_broker_registration_response r = do_register(1, NULL, 0);
    ck_assert_int_eq(r.error_code, GR_INCONSISTENT_CLUSTER_ID);
    ck_assert_uint_eq(gr_metadata_broker_count(img), 0);
}
END_TEST

/* ---- CreateTopics ---- */

START_TEST(test_create_defaults)
{
    start_brokers(3, NULL);
    gr_create_topics_response_creatable_topic_result r = create("orders", -1, -1);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.num_partitions, 1);
    ck_assert_int_eq(r.replication_factor, 1);
    ck_assert(!gr_uuid_is_zero(&r.topic_id));
    ck_assert_int_ge(r.configs_count, 25);
    bool saw = false;
    for (int32_t i = 0; i < r.configs_count; i++)
        if (gr_str_eq(r.configs[i].name, "retention.ms")) {
            saw = true;
            ck_assert(gr_str_eq(r.configs[i].value, "604800000"));
            ck_assert_int_eq(r.configs[i].config_source, GR_CONFIG_SOURCE_DEFAULT);
        }
    ck_assert(saw);
    const gr_metadata_topic *t = topic("orders");
    ck_assert_ptr_nonnull(t);
    ck_assert(!memcmp(t->id.b, r.topic_id.b, 16));
    ck_assert_int_eq(t->partition_count, 1);
    const gr_metadata_partition *p = part("orders", 0);
    ck_assert_int_eq(p->replicas.count, 1);
    ck_assert_int_eq(p->leader, p->replicas.ids[0]);
    ck_assert_int_eq(p->isr.count, 1);
    ck_assert_int_eq(p->leader_epoch, 0);

    r = create("events", 6, 3);
    ck_assert_int_eq(r.error_code, 0);
    for (int32_t i = 0; i < 6; i++) {
        p = part("events", i);
        ck_assert_int_eq(p->replicas.count, 3);
        ck_assert_int_eq(p->isr.count, 3);
        ck_assert_int_eq(p->leader, p->replicas.ids[0]);
        for (int k = 1; k <= 3; k++)
            ck_assert(has(&p->replicas, k));
    }
    /* ids differ */
    ck_assert(memcmp(topic("events")->id.b, topic("orders")->id.b, 16) != 0);

    /* Auto-creation helper: defaults. */
    gr_create_topics_response_creatable_topic_result ar_res;
    ck_assert_int_eq(gr_control_create_topic_default(ctl, gr_str_from("auto"), &ar, &ar_res, &w), 0);
    ck_assert_int_eq(ar_res.error_code, 0);
    ck_assert(commit());
    ck_assert_int_eq(topic("auto")->partition_count, 1);
    ck_assert_int_eq(gr_control_create_topic_default(ctl, gr_str_from("auto"), &ar, &ar_res, &w), 0);
    ck_assert_int_eq(ar_res.error_code, GR_TOPIC_ALREADY_EXISTS);
    ck_assert_uint_eq(w.len, 0);
}
END_TEST

START_TEST(test_create_configs_and_validate_only)
{
    start_brokers(3, NULL);
    gr_create_topics_request_creatable_topic_config cf[2];
    gr_create_topics_request_creatable_topic_config_init(&cf[0]);
    gr_create_topics_request_creatable_topic_config_init(&cf[1]);
    cf[0].name = gr_str_from("retention.ms");
    cf[0].value = gr_str_from("1000");
    cf[1].name = gr_str_from("cleanup.policy");
    cf[1].value = gr_str_from("compact");

    gr_create_topics_response_creatable_topic_result r = create_full("v", 4, 2, NULL, 0, cf, 2, true);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.num_partitions, 4);
    ck_assert_int_eq(r.replication_factor, 2);
    ck_assert_ptr_null(topic("v"));

    r = create_full("v", 4, 2, NULL, 0, cf, 2, false);
    ck_assert_int_eq(r.error_code, 0);
    gr_str v = gr_metadata_config(img, GR_METADATA_RESOURCE_TOPIC, gr_str_from("v"), "retention.ms");
    ck_assert(gr_str_eq(v, "1000"));
    v = gr_metadata_config(img, GR_METADATA_RESOURCE_TOPIC, gr_str_from("v"), "cleanup.policy");
    ck_assert(gr_str_eq(v, "compact"));
    for (int32_t i = 0; i < r.configs_count; i++)
        if (gr_str_eq(r.configs[i].name, "retention.ms")) {
            ck_assert(gr_str_eq(r.configs[i].value, "1000"));
            ck_assert_int_eq(r.configs[i].config_source, GR_CONFIG_SOURCE_TOPIC);
        }

    /* Invalid config values and keys. */
    cf[0].value = gr_str_from("abc");
    r = create_full("w", 1, 1, NULL, 0, cf, 1, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(msg_is(r.error_message, "Invalid value abc for configuration retention.ms: Not a number of type LONG"));
    cf[0].name = gr_str_from("foo");
    r = create_full("w", 1, 1, NULL, 0, cf, 1, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(msg_is(r.error_message, "Unknown topic config name: foo"));
    ck_assert_ptr_null(topic("w"));
}
END_TEST

START_TEST(test_create_errors)
{
    start_brokers(3, NULL);
    ck_assert_int_eq(create("dup", 1, 1).error_code, 0);
    gr_create_topics_response_creatable_topic_result r;

    r = create("dup", 1, 1);
    ck_assert_int_eq(r.error_code, GR_TOPIC_ALREADY_EXISTS);
    ck_assert(msg_is(r.error_message, "Topic 'dup' already exists."));

    r = create("bad name", 1, 1);
    ck_assert_int_eq(r.error_code, GR_INVALID_TOPIC_EXCEPTION);
    ck_assert(msg_is(r.error_message, "Topic name \"bad name\" is illegal, it contains a character other than "
                                      "ASCII alphanumerics, '.', '_' and '-'"));
    ck_assert_int_eq(create(".", 1, 1).error_code, GR_INVALID_TOPIC_EXCEPTION);
    ck_assert_int_eq(create("..", 1, 1).error_code, GR_INVALID_TOPIC_EXCEPTION);
    ck_assert_int_eq(create("", 1, 1).error_code, GR_INVALID_TOPIC_EXCEPTION);
    char longname[251];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    ck_assert_int_eq(create(longname, 1, 1).error_code, GR_INVALID_TOPIC_EXCEPTION);
    longname[249] = '\0';
    ck_assert_int_eq(create(longname, 1, 1).error_code, 0);

    ck_assert_int_eq(create("a.b", 1, 1).error_code, 0);
    r = create("a_b", 1, 1);
    ck_assert_int_eq(r.error_code, GR_INVALID_TOPIC_EXCEPTION);
    ck_assert(msg_is(r.error_message, "Topic 'a_b' collides with existing topic: a.b"));

    r = create("p0", 0, 1);
    ck_assert_int_eq(r.error_code, GR_INVALID_PARTITIONS);
    ck_assert_int_eq(create("p0", -2, 1).error_code, GR_INVALID_PARTITIONS);
    r = create("r0", 1, 0);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICATION_FACTOR);
    ck_assert_int_eq(create("r0", 1, -2).error_code, GR_INVALID_REPLICATION_FACTOR);
    r = create("r4", 1, 4);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICATION_FACTOR);
    ck_assert(msg_is(r.error_message,
                     "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot "
                     "be reached because only 3 broker(s) are registered."));
    /* Fenced brokers do not count. */
    hb_full(3, epochs[3], true, false);
    ck_assert(gr_metadata_broker_get(img, 3)->fenced);
    r = create("r3", 1, 3);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICATION_FACTOR);
    ck_assert(msg_is(r.error_message,
                     "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot "
                     "be reached because only 2 broker(s) are registered."));

    /* Two topics in one request are independent; duplicates are rejected. */
    gr_create_topics_request_creatable_topic t[3];
    for (int i = 0; i < 3; i++) {
        gr_create_topics_request_creatable_topic_init(&t[i]);
        t[i].num_partitions = -1;
        t[i].replication_factor = -1;
    }
    t[0].name = gr_str_from("good");
    t[1].name = gr_str_from("bad!");
    t[2].name = gr_str_from("good");
    gr_create_topics_request req;
    gr_create_topics_request_init(&req);
    req.topics = t;
    req.topics_count = 2;
    gr_create_topics_response resp;
    gr_create_topics_response_init(&resp);
    ck_assert_int_eq(gr_control_create_topics(ctl, &req, 7, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.topics[0].error_code, 0);
    ck_assert_int_eq(resp.topics[1].error_code, GR_INVALID_TOPIC_EXCEPTION);
    ck_assert(commit());
    ck_assert_ptr_nonnull(topic("good"));
    t[0].name = gr_str_from("other");
    t[1] = t[2];
    t[1].name = gr_str_from("other");
    ck_assert_int_eq(gr_control_create_topics(ctl, &req, 7, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.topics[0].error_code, GR_INVALID_REQUEST);
    ck_assert_int_eq(resp.topics[1].error_code, GR_INVALID_REQUEST);
    ck_assert(msg_is(resp.topics[0].error_message, "Duplicate topic name."));
    ck_assert(!commit());
}
END_TEST

START_TEST(test_create_assignment)
{
    start_brokers(3, NULL);
    int32_t a0[] = {2, 3}, a1[] = {3, 1}, bad_dup[] = {1, 1}, bad_unknown[] = {1, 7}, bad_len[] = {1};
    gr_create_topics_request_creatable_replica_assignment as[2];
    for (int i = 0; i < 2; i++)
        gr_create_topics_request_creatable_replica_assignment_init(&as[i]);
    as[0].partition_index = 0;
    as[0].broker_ids = a0;
    as[0].broker_ids_count = 2;
    as[1].partition_index = 1;
    as[1].broker_ids = a1;
    as[1].broker_ids_count = 2;
    gr_create_topics_response_creatable_topic_result r = create_full("m", -1, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(r.num_partitions, 2);
    ck_assert_int_eq(r.replication_factor, 2);
    ck_assert_int_eq(part("m", 0)->leader, 2);
    ck_assert_int_eq(part("m", 1)->leader, 3);
    ck_assert_int_eq(part("m", 1)->replicas.ids[1], 1);

    as[1].broker_ids = bad_dup;
    r = create_full("m2", -1, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    ck_assert(msg_is(r.error_message, "The manual partition assignment includes the broker 1 more than once."));
    as[1].broker_ids = bad_unknown;
    r = create_full("m2", -1, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    ck_assert(msg_is(r.error_message,
                     "The manual partition assignment includes broker 7, but no such broker is registered."));
    as[1].broker_ids = bad_len;
    as[1].broker_ids_count = 1;
    r = create_full("m2", -1, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    as[1].broker_ids = a1;
    as[1].broker_ids_count = 2;
    as[1].partition_index = 2; /* not 0..n-1 */
    r = create_full("m2", -1, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    ck_assert(msg_is(r.error_message, "partitions should be a consecutive 0-based integer sequence"));
    as[1].partition_index = 0; /* twice */
    r = create_full("m2", -1, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    as[1].partition_index = 1;
    r = create_full("m2", 2, -1, as, 2, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REQUEST);
    ck_assert_ptr_null(topic("m2"));
    /* validate_only with a good assignment */
    r = create_full("m2", -1, -1, as, 2, NULL, 0, true);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_ptr_null(topic("m2"));
}
END_TEST

/* ---- placement ---- */

static void count_placement(const char *name, int32_t *leaders, int32_t *replicas, int nb)
{
    memset(leaders, 0, sizeof(int32_t) * (size_t)(nb + 1));
    memset(replicas, 0, sizeof(int32_t) * (size_t)(nb + 1));
    const gr_metadata_topic *t = topic(name);
    ck_assert_ptr_nonnull(t);
    for (int32_t i = 0; i < t->partition_count; i++) {
        const gr_metadata_partition *p = &t->partitions[i];
        leaders[p->leader]++;
        for (int32_t k = 0; k < p->replicas.count; k++) {
            ck_assert(!has(&(gr_metadata_ids){p->replicas.ids, k}, p->replicas.ids[k])); /* distinct */
            replicas[p->replicas.ids[k]]++;
        }
    }
}

START_TEST(test_placement_even)
{
    start_brokers(5, NULL);
    int32_t leaders[6], replicas[6];
    /* 3 of the 5 brokers: fence 4 and 5 to get the 3-broker case first. */
    hb_full(4, epochs[4], true, false);
    hb_full(5, epochs[5], true, false);
    ck_assert_int_eq(create("t3", 60, 3).error_code, 0);
    count_placement("t3", leaders, replicas, 5);
    for (int b = 1; b <= 3; b++) {
        ck_assert_int_eq(leaders[b], 20);
        ck_assert_int_eq(replicas[b], 60);
    }
    ck_assert_int_eq(leaders[4] + leaders[5] + replicas[4] + replicas[5], 0);

    hb(4);
    hb(5);
    ck_assert_int_eq(create("t5", 100, 3).error_code, 0);
    count_placement("t5", leaders, replicas, 5);
    for (int b = 1; b <= 5; b++) {
        ck_assert_int_eq(leaders[b], 20);
        ck_assert_int_eq(replicas[b], 60);
    }
    ck_assert_int_eq(create("t7", 7, 2).error_code, 0);
    count_placement("t7", leaders, replicas, 5);
    int32_t lo = 1000, hi = 0;
    for (int b = 1; b <= 5; b++) {
        lo = leaders[b] < lo ? leaders[b] : lo;
        hi = leaders[b] > hi ? leaders[b] : hi;
    }
    ck_assert_int_le(hi - lo, 1);
}
END_TEST

START_TEST(test_placement_racks)
{
    const char *racks[] = {"a", "a", "b", "b", "c", "c"};
    start_brokers(6, racks);
    ck_assert_int_eq(create("r", 30, 3).error_code, 0);
    int32_t leaders[7], replicas[7];
    count_placement("r", leaders, replicas, 6);
    for (int b = 1; b <= 6; b++) {
        ck_assert_int_eq(leaders[b], 5);
        ck_assert_int_eq(replicas[b], 15);
    }
    const gr_metadata_topic *t = topic("r");
    for (int32_t i = 0; i < t->partition_count; i++) {
        bool seen[3] = {false, false, false};
        for (int32_t k = 0; k < 3; k++) {
            int rk = (t->partitions[i].replicas.ids[k] - 1) / 2;
            ck_assert_msg(!seen[rk], "partition %d has two replicas in rack %d", i, rk);
            seen[rk] = true;
        }
    }
}
END_TEST

/* ---- leadership ---- */

START_TEST(test_fence_on_session_expiry)
{
    start_brokers(3, NULL);
    ck_assert_int_eq(create("f", 9, 3).error_code, 0);
    int32_t old_epoch[9], led_by_1 = 0;
    for (int32_t i = 0; i < 9; i++) {
        old_epoch[i] = part("f", i)->leader_epoch;
        led_by_1 += part("f", i)->leader == 1;
    }
    ck_assert_int_eq(led_by_1, 3);
    int32_t n;
    now += 5000;
    hb(2);
    hb(3);
    ck_assert_int_eq(gr_control_tick(ctl, now, &w, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert(!commit());
    now += 5000; /* broker 1 last heard from 10 s ago */
    hb(2);
    hb(3);
    ck_assert_int_eq(gr_control_tick(ctl, now, &w, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert(commit());
    ck_assert(gr_metadata_broker_get(img, 1)->fenced);
    for (int32_t i = 0; i < 9; i++) {
        const gr_metadata_partition *p = part("f", i);
        ck_assert_int_ne(p->leader, 1);
        ck_assert(has(&p->isr, p->leader));
        ck_assert(!has(&p->isr, 1));
        ck_assert_int_eq(p->isr.count, 2);
        if (p->replicas.ids[0] == 1) {
            ck_assert_int_gt(p->leader_epoch, old_epoch[i]);
            ck_assert_int_eq(p->leader, p->replicas.ids[1]); /* next preferred */
        } else {
            ck_assert_int_eq(p->leader_epoch, old_epoch[i]);
        }
    }
    /* Nothing more to fence. */
    ck_assert_int_eq(gr_control_tick(ctl, now, &w, &n), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_no_live_isr_and_unfence)
{
    start_brokers(2, NULL);
    int32_t one[] = {1};
    gr_create_topics_request_creatable_replica_assignment as;
    gr_create_topics_request_creatable_replica_assignment_init(&as);
    as.partition_index = 0;
    as.broker_ids = one;
    as.broker_ids_count = 1;
    ck_assert_int_eq(create_full("solo", -1, -1, &as, 1, NULL, 0, false).error_code, 0);
    ck_assert_int_eq(part("solo", 0)->leader, 1);

    now += 9001;
    hb(2);
    int32_t n;
    ck_assert_int_eq(gr_control_tick(ctl, now, &w, &n), 0);
    ck_assert_int_eq(n, 1);
    commit();
    const gr_metadata_partition *p = part("solo", 0);
    ck_assert_int_eq(p->leader, -1);
    ck_assert_int_eq(p->isr.count, 1); /* the ISR keeps the last member */
    ck_assert_int_eq(p->isr.ids[0], 1);
    ck_assert_int_eq(p->leader_epoch, 1);

    /* Broker 1 comes back with the same epoch: unfenced, leader again. */
    gr_broker_heartbeat_response h = hb(1);
    ck_assert_int_eq(h.error_code, 0);
    ck_assert(!h.is_fenced);
    p = part("solo", 0);
    ck_assert_int_eq(p->leader, 1);
    ck_assert_int_eq(p->leader_epoch, 2);
    ck_assert_int_eq(p->leader_recovery_state, 0);
}
END_TEST

START_TEST(test_unclean_election)
{
    start_brokers(3, NULL);
    int32_t r3[] = {1, 2, 3};
    gr_create_topics_request_creatable_replica_assignment as;
    gr_create_topics_request_creatable_replica_assignment_init(&as);
    as.partition_index = 0;
    as.broker_ids = r3;
    as.broker_ids_count = 3;
    gr_create_topics_request_creatable_topic_config cf;
    gr_create_topics_request_creatable_topic_config_init(&cf);
    cf.name = gr_str_from("unclean.leader.election.enable");
    cf.value = gr_str_from("true");
    ck_assert_int_eq(create_full("dirty", -1, -1, &as, 1, &cf, 1, false).error_code, 0);
    ck_assert_int_eq(create_full("clean", -1, -1, &as, 1, NULL, 0, false).error_code, 0);
    /* Shrink both ISRs to [1]: fence 2 and 3, then let them back (they stay out of the ISR). */
    hb_full(2, epochs[2], true, false);
    hb_full(3, epochs[3], true, false);
    ck_assert_int_eq(part("clean", 0)->isr.count, 1);
    hb(2);
    hb(3);
    ck_assert_int_eq(part("clean", 0)->isr.count, 1);
    ck_assert_int_eq(part("clean", 0)->leader, 1);
    hb_full(1, epochs[1], true, false);
    const gr_metadata_partition *p = part("clean", 0);
    ck_assert_int_eq(p->leader, -1);
    ck_assert_int_eq(p->isr.ids[0], 1);
    p = part("dirty", 0);
    ck_assert_int_eq(p->leader, 2);
    ck_assert_int_eq(p->isr.count, 1);
    ck_assert_int_eq(p->isr.ids[0], 2);
    ck_assert_int_eq(p->leader_recovery_state, 1);
}
END_TEST

START_TEST(test_controlled_shutdown)
{
    start_brokers(3, NULL);
    ck_assert_int_eq(create("cs", 6, 3).error_code, 0);
    int32_t one[] = {1};
    gr_create_topics_request_creatable_replica_assignment as;
    gr_create_topics_request_creatable_replica_assignment_init(&as);
    as.partition_index = 0;
    as.broker_ids = one;
    as.broker_ids_count = 1;
    ck_assert_int_eq(create_full("only1", -1, -1, &as, 1, NULL, 0, false).error_code, 0);

    gr_broker_heartbeat_response h = hb_full(1, epochs[1], false, true);
    ck_assert_int_eq(h.error_code, 0);
    ck_assert(h.should_shut_down);
    const gr_metadata_broker *b = gr_metadata_broker_get(img, 1);
    ck_assert(b->fenced);
    ck_assert(b->in_controlled_shutdown);
    for (int32_t i = 0; i < 6; i++) {
        const gr_metadata_partition *p = part("cs", i);
        ck_assert_int_ne(p->leader, 1);
        ck_assert(p->leader == 2 || p->leader == 3);
        ck_assert(!has(&p->isr, 1));
        ck_assert_int_eq(p->isr.count, 2);
    }
    ck_assert_int_eq(part("only1", 0)->leader, -1);
    ck_assert_int_eq(part("only1", 0)->isr.ids[0], 1);
    /* Nothing is placed on a broker that shut down. */
    gr_create_topics_response_creatable_topic_result r = create("after", 1, 3);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICATION_FACTOR);
    /* The same process heartbeating on stays fenced: it must re-register. */
    h = hb(1);
    ck_assert(h.is_fenced);
    ck_assert(gr_metadata_broker_get(img, 1)->fenced);
    /* It restarts with a new incarnation at once (its session ended). */
    gr_broker_registration_response rr = do_register(1, NULL, 1);
    ck_assert_int_eq(rr.error_code, 0);
    h = hb(1);
    ck_assert(!h.is_fenced);
    ck_assert(!gr_metadata_broker_get(img, 1)->in_controlled_shutdown);
    ck_assert_int_eq(part("only1", 0)->leader, 1);
}
END_TEST

START_TEST(test_unregister)
{
    start_brokers(2, NULL);
    ck_assert_int_eq(create("u", 2, 2).error_code, 0);
    gr_unregister_broker_request req;
    gr_unregister_broker_request_init(&req);
    req.broker_id = 1;
    gr_unregister_broker_response resp;
    gr_unregister_broker_response_init(&resp);
    ck_assert_int_eq(gr_control_unregister_broker(ctl, &req, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.error_code, 0);
    ck_assert(commit());
    ck_assert_ptr_null(gr_metadata_broker_get(img, 1));
    for (int32_t i = 0; i < 2; i++) {
        ck_assert_int_eq(part("u", i)->leader, 2);
        ck_assert(!has(&part("u", i)->isr, 1));
    }
    ck_assert_int_eq(gr_control_unregister_broker(ctl, &req, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.error_code, GR_BROKER_ID_NOT_REGISTERED);
    ck_assert(!commit());
}
END_TEST

/* ---- DeleteTopics, CreatePartitions ---- */

START_TEST(test_delete_topics)
{
    start_brokers(1, NULL);
    ck_assert_int_eq(create("d1", 1, 1).error_code, 0);
    ck_assert_int_eq(create("d2", 1, 1).error_code, 0);
    gr_uuid id2 = topic("d2")->id;

    gr_str names[2] = {gr_str_from("d1"), gr_str_from("nope")};
    gr_delete_topics_request req;
    gr_delete_topics_request_init(&req);
    req.topic_names = names;
    req.topic_names_count = 2;
    gr_delete_topics_response resp;
    gr_delete_topics_response_init(&resp);
    ck_assert_int_eq(gr_control_delete_topics(ctl, &req, 5, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.responses_count, 2);
    ck_assert_int_eq(resp.responses[0].error_code, 0);
    ck_assert_int_eq(resp.responses[1].error_code, GR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert(commit());
    ck_assert_ptr_null(topic("d1"));
    ck_assert_ptr_nonnull(topic("d2"));

    gr_delete_topics_request_delete_topic_state st[2];
    gr_delete_topics_request_delete_topic_state_init(&st[0]);
    gr_delete_topics_request_delete_topic_state_init(&st[1]);
    st[0].topic_id = id2;
    st[1].topic_id = id2;
    st[1].topic_id.b[3] ^= 0x55;
    gr_delete_topics_request_init(&req);
    req.topics = st;
    req.topics_count = 2;
    ck_assert_int_eq(gr_control_delete_topics(ctl, &req, 6, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.responses[0].error_code, 0);
    ck_assert(gr_str_eq(resp.responses[0].name, "d2"));
    ck_assert_int_eq(resp.responses[1].error_code, GR_UNKNOWN_TOPIC_ID);
    ck_assert(commit());
    ck_assert_ptr_null(topic("d2"));
    ck_assert_uint_eq(gr_metadata_topic_count(img), 0);
}
END_TEST

static gr_create_partitions_response_create_partitions_topic_result
add_parts(const char *name, int32_t count, gr_create_partitions_request_create_partitions_assignment *as,
          int32_t nas, bool validate_only)
{
    gr_create_partitions_request_create_partitions_topic t;
    gr_create_partitions_request_create_partitions_topic_init(&t);
    t.name = gr_str_from(name);
    t.count = count;
    t.assignments = as;
    t.assignments_count = as ? nas : -1;
    gr_create_partitions_request req;
    gr_create_partitions_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    req.validate_only = validate_only;
    gr_create_partitions_response resp;
    gr_create_partitions_response_init(&resp);
    ck_assert_int_eq(gr_control_create_partitions(ctl, &req, 3, &ar, &resp, &w), 0);
    if (validate_only || resp.results[0].error_code)
        ck_assert_uint_eq(w.len, 0);
    commit();
    return resp.results[0];
}

START_TEST(test_create_partitions)
{
    start_brokers(3, NULL);
    ck_assert_int_eq(create("cp", 2, 2).error_code, 0);
    gr_create_partitions_response_create_partitions_topic_result r = add_parts("cp", 5, NULL, 0, true);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(topic("cp")->partition_count, 2);
    r = add_parts("cp", 5, NULL, 0, false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(topic("cp")->partition_count, 5);
    for (int32_t i = 2; i < 5; i++) {
        ck_assert_int_eq(part("cp", i)->replicas.count, 2);
        ck_assert_int_eq(part("cp", i)->leader, part("cp", i)->replicas.ids[0]);
    }
    r = add_parts("cp", 5, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_PARTITIONS);
    ck_assert(msg_is(r.error_message, "Topic already has 5 partition(s)."));
    r = add_parts("cp", 3, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_PARTITIONS);
    ck_assert(msg_is(r.error_message, "The topic cp currently has 5 partition(s); 3 would not be an increase."));
    r = add_parts("nope", 3, NULL, 0, false);
    ck_assert_int_eq(r.error_code, GR_UNKNOWN_TOPIC_OR_PARTITION);

    int32_t ok[] = {3, 1}, bad[] = {3};
    gr_create_partitions_request_create_partitions_assignment as[2];
    gr_create_partitions_request_create_partitions_assignment_init(&as[0]);
    gr_create_partitions_request_create_partitions_assignment_init(&as[1]);
    as[0].broker_ids = ok;
    as[0].broker_ids_count = 2;
    as[1].broker_ids = bad;
    as[1].broker_ids_count = 1;
    r = add_parts("cp", 7, as, 1, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    ck_assert(msg_is(r.error_message, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."));
    r = add_parts("cp", 7, as, 2, false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REPLICA_ASSIGNMENT);
    r = add_parts("cp", 6, as, 1, false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_eq(part("cp", 5)->leader, 3);
    ck_assert_int_eq(part("cp", 5)->replicas.ids[1], 1);
}
END_TEST

/* ---- configs ---- */

static gr_incremental_alter_configs_response_alter_configs_resource_response
ialter(int8_t type, const char *name, const char *key, int8_t op, const char *value, bool validate_only)
{
    gr_incremental_alter_configs_request_alterable_config cf;
    gr_incremental_alter_configs_request_alterable_config_init(&cf);
    cf.name = gr_str_from(key);
    cf.config_operation = op;
    cf.value = value ? gr_str_from(value) : GR_STR_NULL;
    gr_incremental_alter_configs_request_alter_configs_resource r;
    gr_incremental_alter_configs_request_alter_configs_resource_init(&r);
    r.resource_type = type;
    r.resource_name = gr_str_from(name);
    r.configs = &cf;
    r.configs_count = 1;
    gr_incremental_alter_configs_request req;
    gr_incremental_alter_configs_request_init(&req);
    req.resources = &r;
    req.resources_count = 1;
    req.validate_only = validate_only;
    gr_incremental_alter_configs_response resp;
    gr_incremental_alter_configs_response_init(&resp);
    ck_assert_int_eq(gr_control_incremental_alter_configs(ctl, &req, 1, &ar, &resp, &w), 0);
    if (validate_only || resp.responses[0].error_code)
        ck_assert_uint_eq(w.len, 0);
    commit();
    return resp.responses[0];
}

static gr_str tcfg(const char *t, const char *k)
{
    return gr_metadata_config(img, GR_METADATA_RESOURCE_TOPIC, gr_str_from(t), k);
}

START_TEST(test_incremental_alter_configs)
{
    const int8_t T = GR_METADATA_RESOURCE_TOPIC, B = GR_METADATA_RESOURCE_BROKER;
    start_brokers(1, NULL);
    ck_assert_int_eq(create("c", 1, 1).error_code, 0);
    gr_incremental_alter_configs_response_alter_configs_resource_response r;

    r = ialter(T, "c", "retention.ms", GR_CONFIG_OP_SET, "1000", true);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_lt(tcfg("c", "retention.ms").len, 0);
    r = ialter(T, "c", "retention.ms", GR_CONFIG_OP_SET, "1000", false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert(gr_str_eq(tcfg("c", "retention.ms"), "1000"));
    r = ialter(T, "c", "retention.ms", GR_CONFIG_OP_DELETE, NULL, false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_int_lt(tcfg("c", "retention.ms").len, 0);

    /* APPEND starts from the default list; SUBTRACT removes. */
    r = ialter(T, "c", "cleanup.policy", GR_CONFIG_OP_APPEND, "compact", false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert(gr_str_eq(tcfg("c", "cleanup.policy"), "delete,compact"));
    r = ialter(T, "c", "cleanup.policy", GR_CONFIG_OP_APPEND, "compact", false);
    ck_assert(gr_str_eq(tcfg("c", "cleanup.policy"), "delete,compact"));
    r = ialter(T, "c", "cleanup.policy", GR_CONFIG_OP_SUBTRACT, "delete", false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert(gr_str_eq(tcfg("c", "cleanup.policy"), "compact"));
    r = ialter(T, "c", "cleanup.policy", GR_CONFIG_OP_APPEND, "shred", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(gr_str_eq(tcfg("c", "cleanup.policy"), "compact"));

    r = ialter(T, "c", "retention.ms", GR_CONFIG_OP_APPEND, "5", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(msg_is(r.error_message, "Can't APPEND to key retention.ms because its type is not LIST."));
    r = ialter(T, "c", "retention.ms", GR_CONFIG_OP_SET, "abc", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(msg_is(r.error_message, "Invalid value abc for configuration retention.ms: Not a number of type LONG"));
    r = ialter(T, "c", "foo", GR_CONFIG_OP_SET, "1", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(msg_is(r.error_message, "Unknown topic config name: foo"));
    r = ialter(T, "nope", "retention.ms", GR_CONFIG_OP_SET, "1", false);
    ck_assert_int_eq(r.error_code, GR_UNKNOWN_TOPIC_OR_PARTITION);
    r = ialter(T, "c", "retention.ms", 7, "1", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REQUEST);

    /* Brokers: cluster-wide ("") and per broker; only known dynamic keys. */
    r = ialter(B, "", "log.retention.ms", GR_CONFIG_OP_SET, "5000", false);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert(gr_str_eq(gr_metadata_config(img, B, gr_str_from(""), "log.retention.ms"), "5000"));
    r = ialter(B, "1", "num.io.threads", GR_CONFIG_OP_SET, "16", false);
    ck_assert_int_eq(r.error_code, 0);
    r = ialter(B, "1", "num.io.threads", GR_CONFIG_OP_SET, "0", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    ck_assert(msg_is(r.error_message, "Invalid value 0 for configuration num.io.threads: Value must be at least 1"));
    r = ialter(B, "1", "node.id", GR_CONFIG_OP_SET, "3", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_CONFIG);
    r = ialter(B, "x", "num.io.threads", GR_CONFIG_OP_SET, "3", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REQUEST);
    r = ialter(8, "1", "kafka", GR_CONFIG_OP_SET, "DEBUG", false);
    ck_assert_int_eq(r.error_code, GR_INVALID_REQUEST);

    /* The cluster default now feeds the topic's effective value. */
    char buf[64];
    int8_t src;
    ck_assert_int_eq(gr_control_topic_config(ctl, gr_str_from("c"), "retention.ms", buf, sizeof buf, &src), 0);
    ck_assert_str_eq(buf, "5000");
    ck_assert_int_eq(src, GR_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER);
}
END_TEST

START_TEST(test_alter_configs_replaces)
{
    start_brokers(1, NULL);
    ck_assert_int_eq(create("ac", 1, 1).error_code, 0);
    ialter(GR_METADATA_RESOURCE_TOPIC, "ac", "retention.ms", GR_CONFIG_OP_SET, "1000", false);
    ialter(GR_METADATA_RESOURCE_TOPIC, "ac", "cleanup.policy", GR_CONFIG_OP_SET, "compact", false);

    gr_alter_configs_request_alterable_config cf;
    gr_alter_configs_request_alterable_config_init(&cf);
    cf.name = gr_str_from("segment.ms");
    cf.value = gr_str_from("60000");
    gr_alter_configs_request_alter_configs_resource r;
    gr_alter_configs_request_alter_configs_resource_init(&r);
    r.resource_type = GR_METADATA_RESOURCE_TOPIC;
    r.resource_name = gr_str_from("ac");
    r.configs = &cf;
    r.configs_count = 1;
    gr_alter_configs_request req;
    gr_alter_configs_request_init(&req);
    req.resources = &r;
    req.resources_count = 1;
    gr_alter_configs_response resp;
    gr_alter_configs_response_init(&resp);
    ck_assert_int_eq(gr_control_alter_configs(ctl, &req, 1, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.responses[0].error_code, 0);
    ck_assert(commit());
    ck_assert(gr_str_eq(tcfg("ac", "segment.ms"), "60000"));
    ck_assert_int_lt(tcfg("ac", "retention.ms").len, 0);
    ck_assert_int_lt(tcfg("ac", "cleanup.policy").len, 0);

    cf.value = gr_str_from("0"); /* segment.ms must be at least 1: nothing changes */
    ck_assert_int_eq(gr_control_alter_configs(ctl, &req, 1, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.responses[0].error_code, GR_INVALID_CONFIG);
    ck_assert(!commit());
    ck_assert(gr_str_eq(tcfg("ac", "segment.ms"), "60000"));
}
END_TEST

/* A resource named twice in one request is refused, both times, and only
 * it: the other resource of the request is applied (both alter APIs). */
START_TEST(test_alter_configs_duplicate_resource)
{
    const int8_t T = GR_METADATA_RESOURCE_TOPIC;
    start_brokers(1, NULL);
    ck_assert_int_eq(create("d1", 1, 1).error_code, 0);
    ck_assert_int_eq(create("d2", 1, 1).error_code, 0);

    gr_incremental_alter_configs_request_alterable_config icf;
    gr_incremental_alter_configs_request_alterable_config_init(&icf);
    icf.name = gr_str_from("retention.ms");
    icf.value = gr_str_from("1000");
    gr_incremental_alter_configs_request_alter_configs_resource ir[3];
    const char *inames[3] = {"d1", "d2", "d1"};
    for (int i = 0; i < 3; i++) {
        gr_incremental_alter_configs_request_alter_configs_resource_init(&ir[i]);
        ir[i].resource_type = T;
        ir[i].resource_name = gr_str_from(inames[i]);
        ir[i].configs = &icf;
        ir[i].configs_count = 1;
    }
    gr_incremental_alter_configs_request ireq;
    gr_incremental_alter_configs_request_init(&ireq);
    ireq.resources = ir;
    ireq.resources_count = 3;
    gr_incremental_alter_configs_response iresp;
    gr_incremental_alter_configs_response_init(&iresp);
    ck_assert_int_eq(gr_control_incremental_alter_configs(ctl, &ireq, 1, &ar, &iresp, &w), 0);
    commit();
    ck_assert_int_eq(iresp.responses[0].error_code, GR_INVALID_REQUEST);
    ck_assert(msg_is(iresp.responses[0].error_message, "Duplicate resource."));
    ck_assert_int_eq(iresp.responses[1].error_code, 0);
    ck_assert_int_eq(iresp.responses[2].error_code, GR_INVALID_REQUEST);
    ck_assert(gr_str_eq(tcfg("d2", "retention.ms"), "1000"));
    ck_assert_int_lt(tcfg("d1", "retention.ms").len, 0);

    gr_alter_configs_request_alterable_config acf;
    gr_alter_configs_request_alterable_config_init(&acf);
    acf.name = gr_str_from("segment.ms");
    acf.value = gr_str_from("60000");
    gr_alter_configs_request_alter_configs_resource arr[3];
    const char *anames[3] = {"d2", "d1", "d2"};
    for (int i = 0; i < 3; i++) {
        gr_alter_configs_request_alter_configs_resource_init(&arr[i]);
        arr[i].resource_type = T;
        arr[i].resource_name = gr_str_from(anames[i]);
        arr[i].configs = &acf;
        arr[i].configs_count = 1;
    }
    gr_alter_configs_request areq;
    gr_alter_configs_request_init(&areq);
    areq.resources = arr;
    areq.resources_count = 3;
    gr_alter_configs_response aresp;
    gr_alter_configs_response_init(&aresp);
    ck_assert_int_eq(gr_control_alter_configs(ctl, &areq, 1, &ar, &aresp, &w), 0);
    commit();
    ck_assert_int_eq(aresp.responses[0].error_code, GR_INVALID_REQUEST);
    ck_assert(msg_is(aresp.responses[0].error_message, "Duplicate resource."));
    ck_assert_int_eq(aresp.responses[1].error_code, 0);
    ck_assert_int_eq(aresp.responses[2].error_code, GR_INVALID_REQUEST);
    ck_assert(gr_str_eq(tcfg("d1", "segment.ms"), "60000"));
    ck_assert(gr_str_eq(tcfg("d2", "retention.ms"), "1000")); /* untouched */
}
END_TEST

START_TEST(test_describe_configs)
{
    start_brokers(1, NULL);
    ck_assert_int_eq(create("dc", 1, 1).error_code, 0);
    ialter(GR_METADATA_RESOURCE_TOPIC, "dc", "retention.ms", GR_CONFIG_OP_SET, "1000", false);

    gr_describe_configs_request_describe_configs_resource r[3];
    for (int i = 0; i < 3; i++)
        gr_describe_configs_request_describe_configs_resource_init(&r[i]);
    r[0].resource_type = GR_METADATA_RESOURCE_TOPIC;
    r[0].resource_name = gr_str_from("dc");
    r[0].configuration_keys = NULL;
    r[0].configuration_keys_count = -1;
    gr_str keys[2] = {gr_str_from("segment.bytes"), gr_str_from("retention.ms")};
    r[1].resource_type = GR_METADATA_RESOURCE_TOPIC;
    r[1].resource_name = gr_str_from("dc");
    r[1].configuration_keys = keys;
    r[1].configuration_keys_count = 2;
    r[2].resource_type = GR_METADATA_RESOURCE_TOPIC;
    r[2].resource_name = gr_str_from("missing");
    r[2].configuration_keys_count = -1;
    gr_describe_configs_request req;
    gr_describe_configs_request_init(&req);
    req.resources = r;
    req.resources_count = 3;
    req.include_synonyms = true;
    gr_describe_configs_response resp;
    gr_describe_configs_response_init(&resp);
    ck_assert_int_eq(gr_control_describe_configs(ctl, &req, 4, &ar, &resp), 0);
    ck_assert_int_eq(resp.results_count, 3);
    ck_assert_int_eq(resp.results[0].error_code, 0);
    ck_assert_int_ge(resp.results[0].configs_count, 25);
    ck_assert_int_eq(resp.results[1].configs_count, 2);
    ck_assert_int_eq(resp.results[2].error_code, GR_UNKNOWN_TOPIC_OR_PARTITION);
    for (int32_t i = 0; i < resp.results[1].configs_count; i++) {
        gr_describe_configs_response_describe_configs_resource_result *c = &resp.results[1].configs[i];
        if (gr_str_eq(c->name, "retention.ms")) {
            ck_assert(gr_str_eq(c->value, "1000"));
            ck_assert_int_eq(c->config_source, GR_CONFIG_SOURCE_TOPIC);
            ck_assert_int_eq(c->synonyms_count, 2); /* topic value, then the default */
            ck_assert(gr_str_eq(c->synonyms[1].name, "log.retention.ms"));
            ck_assert_int_eq(c->synonyms[1].source, GR_CONFIG_SOURCE_DEFAULT);
            ck_assert_int_eq(c->config_type, 5); /* LONG */
        } else {
            ck_assert(gr_str_eq(c->name, "segment.bytes"));
            ck_assert(gr_str_eq(c->value, "1073741824"));
            ck_assert_int_eq(c->config_source, GR_CONFIG_SOURCE_DEFAULT);
        }
    }
    /* Broker resource: what is set, with the defaults of the known keys. */
    ialter(GR_METADATA_RESOURCE_BROKER, "1", "num.io.threads", GR_CONFIG_OP_SET, "16", false);
    gr_describe_configs_request_describe_configs_resource br;
    gr_describe_configs_request_describe_configs_resource_init(&br);
    br.resource_type = GR_METADATA_RESOURCE_BROKER;
    br.resource_name = gr_str_from("1");
    gr_str bkeys[1] = {gr_str_from("num.io.threads")};
    br.configuration_keys = bkeys;
    br.configuration_keys_count = 1;
    req.resources = &br;
    req.resources_count = 1;
    ck_assert_int_eq(gr_control_describe_configs(ctl, &req, 4, &ar, &resp), 0);
    ck_assert_int_eq(resp.results[0].error_code, 0);
    ck_assert_int_eq(resp.results[0].configs_count, 1);
    ck_assert(gr_str_eq(resp.results[0].configs[0].value, "16"));
    ck_assert_int_eq(resp.results[0].configs[0].config_source, GR_CONFIG_SOURCE_DYNAMIC_BROKER);
}
END_TEST

/* ---- entries ---- */

START_TEST(test_entry_atomic)
{
    start_brokers(3, NULL);
    gr_create_topics_request_creatable_topic t;
    gr_create_topics_request_creatable_topic_init(&t);
    t.name = gr_str_from("atom");
    t.num_partitions = 3;
    t.replication_factor = 2;
    gr_create_topics_request_creatable_topic_config cf;
    gr_create_topics_request_creatable_topic_config_init(&cf);
    cf.name = gr_str_from("retention.ms");
    cf.value = gr_str_from("1");
    t.configs = &cf;
    t.configs_count = 1;
    gr_create_topics_request req;
    gr_create_topics_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    gr_create_topics_response resp;
    gr_create_topics_response_init(&resp);
    ck_assert_int_eq(gr_control_create_topics(ctl, &req, 7, &ar, &resp, &w), 0);
    ck_assert_int_eq(resp.topics[0].error_code, 0);

    int32_t count = 0;
    ck_assert_int_eq(gr_mdentry_check(w.p, w.len, &count), 0);
    ck_assert_int_eq(count, 1 + 3 + 1); /* topic, partitions, config */

    /* Truncated: nothing applied. */
    ck_assert_int_ne(gr_mdentry_apply(img, w.p, w.len - 1, off, 1), 0);
    ck_assert_ptr_null(topic("atom"));
    /* Third record's type made unknown: nothing applied, not even the first two. */
    gr_mdentry_iter it;
    gr_mdentry_iter_init(&it, w.p, w.len);
    const uint8_t *f = NULL;
    size_t n;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(gr_mdentry_next(&it, &f, &n), 1);
    uint8_t *frame = (uint8_t *)f;
    uint8_t saved = frame[1];
    frame[1] = 99;
    ck_assert_int_eq(gr_mdentry_apply(img, w.p, w.len, off, 1), GR_METADATA_ERR_VERSION);
    ck_assert_ptr_null(topic("atom"));
    ck_assert_uint_eq(gr_metadata_topic_count(img), 0);
    /* A length prefix beyond the end. */
    uint8_t junk[] = {0x7f, 1, 2};
    ck_assert_int_eq(gr_mdentry_apply(img, junk, sizeof junk, off, 1), GR_METADATA_ERR_DECODE);
    frame[1] = saved;
    /* Every single-byte corruption and every truncation either applies or
     * fails cleanly; a failed decode leaves a fresh image empty. */
    for (size_t i = 0; i < w.len; i++) {
        gr_metadata_image *other = gr_metadata_image_new();
        ck_assert_ptr_nonnull(other);
        int e = gr_mdentry_apply(other, w.p, i, 0, 1);
        if (e == GR_METADATA_ERR_DECODE || e == GR_METADATA_ERR_VERSION)
            ck_assert_uint_eq(gr_metadata_topic_count(other), 0);
        gr_metadata_image_free(other);
        other = gr_metadata_image_new();
        ck_assert_ptr_nonnull(other);
        uint8_t keep = w.p[i];
        w.p[i] ^= 0xa5;
        e = gr_mdentry_apply(other, w.p, w.len, 0, 1);
        if (e == GR_METADATA_ERR_DECODE || e == GR_METADATA_ERR_VERSION)
            ck_assert_uint_eq(gr_metadata_topic_count(other), 0);
        w.p[i] = keep;
        gr_metadata_image_free(other);
    }
    ck_assert(commit());
    ck_assert_int_eq(topic("atom")->partition_count, 3);
    ck_assert_int_eq(gr_metadata_last_offset(img), off - 1);
    /* An empty entry is valid and changes nothing. */
    ck_assert_int_eq(gr_mdentry_apply(img, NULL, 0, off, 1), 0);
}
END_TEST

START_TEST(test_activate_after_failover)
{
    start_brokers(2, NULL);
    ck_assert_int_eq(create("fo", 2, 2).error_code, 0);
    /* A new controller over the same image: no heartbeat state until activate. */
    gr_control_config cfg;
    gr_control_config_defaults(&cfg);
    cfg.seed = 7;
    gr_control *c2 = gr_control_new(img, &cfg);
    ck_assert_ptr_nonnull(c2);
    int64_t t0 = now + 60000;
    ck_assert_int_eq(gr_control_activate(c2, t0), 0);
    int32_t n;
    ck_assert_int_eq(gr_control_tick(c2, t0 + 9000, &w, &n), 0);
    ck_assert_int_eq(n, 0); /* a full session of grace */
    ck_assert_int_eq(gr_control_tick(c2, t0 + 9001, &w, &n), 0);
    ck_assert_int_eq(n, 2);
    gr_control_free(c2);
    ck_assert(commit());
    ck_assert(gr_metadata_broker_get(img, 1)->fenced);
    ck_assert(gr_metadata_broker_get(img, 2)->fenced);
    ck_assert_int_eq(part("fo", 0)->leader, -1);
    ck_assert_int_eq(part("fo", 0)->isr.count, 1);
}
END_TEST

Suite *control_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_register_and_unfence);
    tcase_add_test(tc, test_register_errors);
    tcase_add_test(tc, test_cluster_id_checked);
    tcase_add_test(tc, test_create_defaults);
    tcase_add_test(tc, test_create_configs_and_validate_only);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_create_assignment);
    tcase_add_test(tc, test_placement_even);
    tcase_add_test(tc, test_placement_racks);
    tcase_add_test(tc, test_fence_on_session_expiry);
    tcase_add_test(tc, test_no_live_isr_and_unfence);
    tcase_add_test(tc, test_unclean_election);
    tcase_add_test(tc, test_controlled_shutdown);
    tcase_add_test(tc, test_unregister);
    tcase_add_test(tc, test_delete_topics);
    tcase_add_test(tc, test_create_partitions);
    tcase_add_test(tc, test_incremental_alter_configs);
    tcase_add_test(tc, test_alter_configs_replaces);
    tcase_add_test(tc, test_alter_configs_duplicate_resource);
    tcase_add_test(tc, test_describe_configs);
    tcase_add_test(tc, test_entry_atomic);
    tcase_add_test(tc, test_activate_after_failover);
    suite_add_tcase(s, tc);
    return s;
}
