/*
 * test_offsets_topic.c - broker/offsets_topic: Java's String.hashCode and
 * the coordinator partition, against values Java computes (ASCII, a BMP
 * character, a character outside the BMP that Java sees as a surrogate
 * pair, a negative hash); and the settings the internal topics are
 * created with.
 */
#include <check.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/offsets_topic.h"
#include "tests/unit/suites.h"

#define HASH(s) gr_java_string_hash(s, strlen(s))
#define PART(s, n) gr_coordinator_partition(s, strlen(s), n)

START_TEST(java_hash_values)
{
    ck_assert_int_eq(HASH(""), 0);
    ck_assert_int_eq(HASH("hello"), 99162322);
    ck_assert_int_eq(HASH("my-group"), -1906497762);
    ck_assert_int_eq(HASH("\xc3\xa9"), 233);                 /* é */
    ck_assert_int_eq(HASH("\xf0\x9f\x98\x80"), 1772899);     /* U+1F600: D83D DE00 */
    ck_assert_int_eq(HASH("gr\xc3\xbcppe-\xf0\x9f\x98\x80-x"), 1337195879);
}
END_TEST

START_TEST(coordinator_partitions)
{
    ck_assert_int_eq(PART("hello", 50), 22);
    ck_assert_int_eq(PART("my-group", 50), 12); /* negative hash: abs first */
    ck_assert_int_eq(PART("\xf0\x9f\x98\x80", 50), 49);
    ck_assert_int_eq(PART("anything", 1), 0);
}
END_TEST

START_TEST(invalid_utf8_is_bounded)
{
    /* Truncated and stray bytes must not read past the end. */
    const char bad[] = {(char)0xf0, (char)0x9f};
    ck_assert_int_eq(gr_java_string_hash(bad, 2), 31 * 0xFFFD + 0xFFFD);
    const char stray[] = {(char)0x80};
    ck_assert_int_eq(gr_java_string_hash(stray, 1), 0xFFFD);
}
END_TEST


static const char *spec_config(const gr_internal_topic_spec *s, const char *name)
{
    for (int i = 0; i < s->nconfigs; i++)
        if (strcmp(s->configs[i].name, name) == 0)
            return s->configs[i].value;
    return NULL;
}

START_TEST(internal_topic_names)
{
    ck_assert(gr_internal_topic(gr_str_from("__consumer_offsets")));
    ck_assert(gr_internal_topic(gr_str_from("__transaction_state")));
    ck_assert(gr_internal_topic(gr_str_from("__share_group_state")));
    ck_assert(!gr_internal_topic(gr_str_from("__consumer_offsetsx")));
    ck_assert(!gr_internal_topic(gr_str_from("__consumer_offset")));
    ck_assert(!gr_internal_topic(gr_str_from("__cluster_metadata")));
    ck_assert(!gr_internal_topic(gr_str_from("__other")));
    ck_assert(!gr_internal_topic(gr_str_from("_schemas")));
    ck_assert(!gr_internal_topic(gr_str_from("")));
    ck_assert(!gr_internal_topic(GR_STR_NULL));
}
END_TEST

START_TEST(offsets_topic_spec)
{
    gr_config *cfg = gr_config_new(gr_broker_config_defs, gr_broker_config_ndefs);
    ck_assert_ptr_nonnull(cfg);
    gr_internal_topic_spec s;
    ck_assert(!gr_internal_topic_spec_for(cfg, gr_str_from("orders"), 3, &s));

    /* Kafka's defaults with enough brokers: nothing capped. */
    ck_assert(gr_internal_topic_spec_for(cfg, gr_str_from("__consumer_offsets"), 5, &s));
    ck_assert_int_eq(s.partitions, 50);
    ck_assert_int_eq(s.replication_factor, 3);
    ck_assert(!s.capped);
    ck_assert_str_eq(spec_config(&s, "cleanup.policy"), "compact");
    ck_assert_str_eq(spec_config(&s, "compression.type"), "producer");
    ck_assert_str_eq(spec_config(&s, "segment.bytes"), "104857600");
    ck_assert_ptr_null(spec_config(&s, "min.insync.replicas"));

    /* Configured values, and the cap at the live broker count. */
    ck_assert_int_eq(gr_config_set(cfg, "offsets.topic.num.partitions", "7", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(cfg, "offsets.topic.segment.bytes", "2097152", GR_CFG_SRC_FILE), 0);
    ck_assert(gr_internal_topic_spec_for(cfg, gr_str_from("__consumer_offsets"), 2, &s));
    ck_assert_int_eq(s.partitions, 7);
    ck_assert_int_eq(s.replication_factor, 2);
    ck_assert_int_eq(s.wanted_replication_factor, 3);
    ck_assert(s.capped);
    ck_assert_str_eq(spec_config(&s, "segment.bytes"), "2097152");

    /* No live broker known: left as configured (the creation is refused). */
    ck_assert(gr_internal_topic_spec_for(cfg, gr_str_from("__consumer_offsets"), 0, &s));
    ck_assert_int_eq(s.replication_factor, 3);
    ck_assert(!s.capped);
    gr_config_free(cfg);
}
END_TEST

START_TEST(transaction_topic_spec)
{
    gr_config *cfg = gr_config_new(gr_broker_config_defs, gr_broker_config_ndefs);
    ck_assert_ptr_nonnull(cfg);
    gr_internal_topic_spec s;
    ck_assert(gr_internal_topic_spec_for(cfg, gr_str_from("__transaction_state"), 3, &s));
    ck_assert_int_eq(s.partitions, 50);
    ck_assert_int_eq(s.replication_factor, 3);
    ck_assert_str_eq(spec_config(&s, "cleanup.policy"), "compact");
    ck_assert_str_eq(spec_config(&s, "compression.type"), "uncompressed");
    ck_assert_str_eq(spec_config(&s, "unclean.leader.election.enable"), "false");
    ck_assert_str_eq(spec_config(&s, "min.insync.replicas"), "2");
    ck_assert_str_eq(spec_config(&s, "segment.bytes"), "104857600");

    /* One broker: replication factor 1, and min.insync.replicas with it. */
    ck_assert_int_eq(gr_config_set(cfg, "transaction.state.log.num.partitions", "4", GR_CFG_SRC_FILE), 0);
    ck_assert(gr_internal_topic_spec_for(cfg, gr_str_from("__transaction_state"), 1, &s));
    ck_assert_int_eq(s.partitions, 4);
    ck_assert_int_eq(s.replication_factor, 1);
    ck_assert(s.capped);
    ck_assert_str_eq(spec_config(&s, "min.insync.replicas"), "1");
    gr_config_free(cfg);
}
END_TEST

Suite *offsets_topic_suite(void)
{
    Suite *s = suite_create("offsets_topic");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, java_hash_values);
    tcase_add_test(tc, coordinator_partitions);
    tcase_add_test(tc, invalid_utf8_is_bounded);
    tcase_add_test(tc, internal_topic_names);
    tcase_add_test(tc, offsets_topic_spec);
    tcase_add_test(tc, transaction_topic_spec);
    suite_add_tcase(s, tc);
    return s;
}
