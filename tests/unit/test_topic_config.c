/*
 * test_topic_config.c - common/topic_config: Kafka's topic keys, their
 * defaults and bounds, and Kafka's validation messages.
 */
#include <check.h>
#include <string.h>

#include "common/errors.h"
#include "common/topic_config.h"
#include "tests/unit/suites.h"

static char err[512];

static int check(const char *k, const char *v)
{
    err[0] = '\0';
    return gr_topic_config_validate(k, v, err, sizeof err);
}

START_TEST(test_table_sorted_and_findable)
{
    ck_assert_uint_ge(gr_topic_config_ndefs, 25);
    for (size_t i = 0; i < gr_topic_config_ndefs; i++) {
        const gr_config_def *d = &gr_topic_config_defs[i];
        if (i > 0)
            ck_assert_int_lt(strcmp(gr_topic_config_defs[i - 1].name, d->name), 0);
        ck_assert_ptr_eq(gr_topic_config_find(d->name), d);
        /* every default passes its own checks */
        ck_assert_msg(check(d->name, d->dflt) == 0, "%s: %s", d->name, err);
    }
    ck_assert_ptr_null(gr_topic_config_find("retention"));
    ck_assert_ptr_null(gr_topic_config_find("zzz"));
    ck_assert_ptr_null(gr_topic_config_find(""));
}
END_TEST

START_TEST(test_kafka_defaults)
{
    ck_assert_str_eq(gr_topic_config_find("max.message.bytes")->dflt, "1048588");
    ck_assert_str_eq(gr_topic_config_find("retention.ms")->dflt, "604800000");
    ck_assert_str_eq(gr_topic_config_find("segment.bytes")->dflt, "1073741824");
    ck_assert_str_eq(gr_topic_config_find("cleanup.policy")->dflt, "delete");
    ck_assert_str_eq(gr_topic_config_find("compression.type")->dflt, "producer");
    ck_assert_str_eq(gr_topic_config_find("min.insync.replicas")->dflt, "1");
    ck_assert_str_eq(gr_topic_config_find("unclean.leader.election.enable")->dflt, "false");
    ck_assert_str_eq(gr_topic_config_find("message.timestamp.type")->dflt, "CreateTime");
    ck_assert_str_eq(gr_topic_config_find("retention.bytes")->dflt, "-1");
}
END_TEST

START_TEST(test_unknown_key)
{
    ck_assert_int_eq(check("foo", "1"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Unknown topic config name: foo");
    /* broker keys are not topic keys */
    ck_assert_int_eq(check("log.retention.ms", "1"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Unknown topic config name: log.retention.ms");
}
END_TEST

START_TEST(test_numbers)
{
    ck_assert_int_eq(check("retention.ms", "abc"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value abc for configuration retention.ms: Not a number of type LONG");
    ck_assert_int_eq(check("retention.ms", "-1"), 0);
    ck_assert_int_eq(check("retention.ms", " 1000 "), 0); /* trimmed, as Kafka does */
    ck_assert_int_eq(check("retention.ms", "-2"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value -2 for configuration retention.ms: Value must be at least -1");
    ck_assert_int_eq(check("retention.ms", "1.5"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("retention.ms", "99999999999999999999"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("retention.bytes", "-5"), 0);
    ck_assert_int_eq(check("max.message.bytes", "3000000000"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value 3000000000 for configuration max.message.bytes: Not a number of type INT");
    ck_assert_int_eq(check("segment.bytes", "1048575"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576");
    ck_assert_int_eq(check("segment.bytes", "1048576"), 0);
    ck_assert_int_eq(check("min.insync.replicas", "0"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("min.insync.replicas", "2"), 0);
    ck_assert_int_eq(check("segment.ms", "0"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("flush.messages", "9223372036854775807"), 0);
    ck_assert_int_eq(check("min.cleanable.dirty.ratio", "0.25"), 0);
    ck_assert_int_eq(check("min.cleanable.dirty.ratio", "1.5"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1");
    ck_assert_int_eq(check("min.cleanable.dirty.ratio", "x"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value x for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE");
    ck_assert_int_eq(check("compression.gzip.level", "-1"), 0);
    ck_assert_int_eq(check("compression.gzip.level", "0"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("compression.zstd.level", "23"), GR_INVALID_CONFIG);
}
END_TEST

START_TEST(test_bool_enum_list)
{
    ck_assert_int_eq(check("preallocate", "TRUE"), 0);
    ck_assert_int_eq(check("unclean.leader.election.enable", "yes"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value yes for configuration unclean.leader.election.enable: Expected value "
                          "to be either true or false");
    for (const char *const *v = (const char *const[]){"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd", NULL};
         *v; v++)
        ck_assert_int_eq(check("compression.type", *v), 0);
    ck_assert_int_eq(check("compression.type", "brotli"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value brotli for configuration compression.type: String must be one of: "
                          "uncompressed, zstd, lz4, snappy, gzip, producer");
    ck_assert_int_eq(check("message.timestamp.type", "LogAppendTime"), 0);
    ck_assert_int_eq(check("message.timestamp.type", "logappendtime"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("cleanup.policy", "compact"), 0);
    ck_assert_int_eq(check("cleanup.policy", "compact,delete"), 0);
    ck_assert_int_eq(check("cleanup.policy", "delete, compact"), 0);
    ck_assert_int_eq(check("cleanup.policy", "compact,remove"), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Invalid value compact,remove for configuration cleanup.policy: String must be one of: "
                          "compact, delete");
    ck_assert_int_eq(check("leader.replication.throttled.replicas", "*"), 0);
    ck_assert_int_eq(check("leader.replication.throttled.replicas", "0:1,1:2"), 0);
    ck_assert_int_eq(check("leader.replication.throttled.replicas", "0-1"), GR_INVALID_CONFIG);
    ck_assert_int_eq(check("retention.ms", NULL), GR_INVALID_CONFIG);
    ck_assert_str_eq(err, "Null value not supported for topic configs: retention.ms");
}
END_TEST

START_TEST(test_broker_synonyms)
{
    ck_assert_str_eq(gr_topic_config_broker_key("retention.ms"), "log.retention.ms");
    ck_assert_str_eq(gr_topic_config_broker_key("max.message.bytes"), "message.max.bytes");
    ck_assert_str_eq(gr_topic_config_broker_key("segment.ms"), "log.roll.ms");
    ck_assert_str_eq(gr_topic_config_broker_key("cleanup.policy"), "log.cleanup.policy");
    ck_assert_ptr_null(gr_topic_config_broker_key("leader.replication.throttled.replicas"));
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++)
        ck_assert_ptr_nonnull(gr_topic_config_find(gr_topic_config_synonyms[i].topic_key));
}
END_TEST

Suite *topic_config_suite(void)
{
    Suite *s = suite_create("topic_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_table_sorted_and_findable);
    tcase_add_test(tc, test_kafka_defaults);
    tcase_add_test(tc, test_unknown_key);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_bool_enum_list);
    tcase_add_test(tc, test_broker_synonyms);
    suite_add_tcase(s, tc);
    return s;
}
