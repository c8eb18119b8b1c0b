/*
 * test_topic_settings.c - broker/topic_settings: a topic's effective
 * settings from its own keys, the broker's defaults and Kafka's defaults.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/topic_settings.h"
#include "common/batch.h"
#include "tests/unit/suites.h"

/* key=value pairs, NULL-terminated. */
static const char *lookup(void *ctx, const char *key, char *buf, size_t buflen)
{
    for (const char *const *kv = ctx; kv && kv[0]; kv += 2)
        if (strcmp(kv[0], key) == 0) {
            snprintf(buf, buflen, "%s", kv[1]);
            return buf;
        }
    return NULL;
}

static void build(gr_topic_settings *s, const char *const *topic, const char *const *broker)
{
    gr_topic_settings_build(s, "t", lookup, (void *)topic, lookup, (void *)broker);
}

START_TEST(test_kafka_defaults)
{
    gr_topic_settings s;
    build(&s, NULL, NULL);
    ck_assert(s.delete_ && !s.compact);
    ck_assert_int_eq(s.log.retention_ms, 604800000);
    ck_assert_int_eq(s.log.retention_bytes, -1);
    ck_assert_int_eq(s.log.segment_bytes, 1073741824);
    ck_assert_int_eq(s.log.segment_ms, 604800000);
    ck_assert_int_eq(s.log.flush_interval_messages, INT64_MAX);
    ck_assert(!s.log.log_append_time);
    ck_assert_int_eq(s.max_message_bytes, 1048588);
    ck_assert_int_eq(s.compression, GR_TOPIC_COMPRESSION_PRODUCER);
    ck_assert_int_eq(s.ts_before_max_ms, INT64_MAX);
    ck_assert_int_eq(s.ts_after_max_ms, 3600000);
    ck_assert_int_eq(s.min_insync_replicas, 1);
}
END_TEST

START_TEST(test_min_insync_replicas)
{
    static const char *const topic[] = {"min.insync.replicas", "3", NULL};
    static const char *const zero[] = {"min.insync.replicas", "0", NULL};
    static const char *const broker[] = {"min.insync.replicas", "2", NULL};
    gr_topic_settings s;
    build(&s, topic, broker);
    ck_assert_int_eq(s.min_insync_replicas, 3);
    build(&s, NULL, broker);
    ck_assert_int_eq(s.min_insync_replicas, 2);
    /* Below the key's floor of 1: the broker's default instead. */
    build(&s, zero, broker);
    ck_assert_int_eq(s.min_insync_replicas, 2);
    /* The broker key is a known one of the broker's configuration. */
    gr_config *c = gr_config_new(gr_broker_config_defs, gr_broker_config_ndefs);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gr_config_set(c, "min.insync.replicas", "2", GR_CFG_SRC_FILE), 0);
    ck_assert_int_ne(gr_config_set(c, "min.insync.replicas", "0", GR_CFG_SRC_FILE), 0);
    gr_topic_settings_from_image(&s, NULL, gr_str_from("t"), 1, c);
    ck_assert_int_eq(s.min_insync_replicas, 2);
    gr_config_free(c);
}
END_TEST

START_TEST(test_topic_wins_over_broker)
{
    static const char *const topic[] = {"retention.ms", "1000", "segment.bytes", "2097152",
                                        "max.message.bytes", "500", "message.timestamp.type",
                                        "LogAppendTime", "compression.type", "gzip",
                                        "compression.gzip.level", "9", NULL};
    static const char *const broker[] = {"log.retention.ms", "5000", "log.segment.bytes", "4096",
                                         "message.max.bytes", "700", "log.retention.bytes", "123",
                                         NULL};
    gr_topic_settings s;
    build(&s, topic, broker);
    ck_assert_int_eq(s.log.retention_ms, 1000);
    ck_assert_int_eq(s.log.segment_bytes, 2097152);
    ck_assert_int_eq(s.max_message_bytes, 500);
    ck_assert(s.log.log_append_time);
    ck_assert_int_eq(s.compression, GR_CODEC_GZIP);
    ck_assert_int_eq(s.compression_level, 9);
    /* Not set on the topic: the broker's value, even below the topic
     * key's own floor (log.segment.bytes has a lower one). */
    ck_assert_int_eq(s.log.retention_bytes, 123);
    build(&s, NULL, broker);
    ck_assert_int_eq(s.log.segment_bytes, 4096);
    ck_assert_int_eq(s.max_message_bytes, 700);
}
END_TEST

START_TEST(test_broker_precedence_and_units)
{
    static const char *const hours[] = {"log.retention.hours", "2", "log.roll.hours", "3", NULL};
    static const char *const minutes[] = {"log.retention.hours", "2", "log.retention.minutes", "5",
                                          NULL};
    static const char *const all[] = {"log.retention.hours", "2", "log.retention.minutes", "5",
                                      "log.retention.ms", "77", "log.roll.hours", "3",
                                      "log.roll.ms", "99", NULL};
    static const char *const forever[] = {"log.retention.hours", "-1", NULL};
    gr_topic_settings s;
    build(&s, NULL, hours);
    ck_assert_int_eq(s.log.retention_ms, 2 * 3600000LL);
    ck_assert_int_eq(s.log.segment_ms, 3 * 3600000LL);
    build(&s, NULL, minutes);
    ck_assert_int_eq(s.log.retention_ms, 5 * 60000LL);
    build(&s, NULL, all);
    ck_assert_int_eq(s.log.retention_ms, 77);
    ck_assert_int_eq(s.log.segment_ms, 99);
    build(&s, NULL, forever);
    ck_assert_int_eq(s.log.retention_ms, -1);
}
END_TEST

START_TEST(test_cleanup_policy)
{
    static const char *const compact[] = {"cleanup.policy", "compact", "retention.ms", "10", NULL};
    static const char *const both[] = {"cleanup.policy", " compact , delete", "retention.ms", "10",
                                       "min.cleanable.dirty.ratio", "0.25", NULL};
    static const char *const broker[] = {"log.cleanup.policy", "compact", NULL};
    gr_topic_settings s;
    build(&s, compact, NULL);
    ck_assert(s.compact && !s.delete_);
    /* Compact only: retention never trims the log. */
    ck_assert_int_eq(s.log.retention_ms, -1);
    ck_assert_int_eq(s.log.retention_bytes, -1);
    build(&s, both, NULL);
    ck_assert(s.compact && s.delete_ && s.cleaner.delete_too);
    ck_assert_int_eq(s.log.retention_ms, 10);
    ck_assert_double_eq_tol(s.cleaner.min_cleanable_dirty_ratio, 0.25, 1e-9);
    build(&s, NULL, broker);
    ck_assert(s.compact && !s.delete_);
}
END_TEST

START_TEST(test_bad_values_fall_back)
{
    /* Values that fail the key's checks are skipped, level by level. */
    static const char *const topic[] = {"retention.ms", "soon", "compression.type", "brotli",
                                        "segment.bytes", "10", NULL};
    static const char *const broker[] = {"log.retention.ms", "42", "compression.type", "lz4",
                                         NULL};
    gr_topic_settings s;
    build(&s, topic, broker);
    ck_assert_int_eq(s.log.retention_ms, 42);
    ck_assert_int_eq(s.compression, GR_CODEC_LZ4);
    ck_assert_int_eq(s.compression_level, 9);
    ck_assert_int_eq(s.log.segment_bytes, 1073741824);
}
END_TEST

START_TEST(test_equal_inputs_compare_equal)
{
    static const char *const topic[] = {"compression.type", "uncompressed", NULL};
    gr_topic_settings a, b;
    memset(&b, 0xa5, sizeof b);
    build(&a, topic, NULL);
    build(&b, topic, NULL);
    ck_assert_int_eq(a.compression, GR_CODEC_NONE);
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    static const char *const other[] = {"compression.type", "zstd", NULL};
    build(&b, other, NULL);
    ck_assert_int_ne(memcmp(&a, &b, sizeof a), 0);
}
END_TEST

START_TEST(test_from_broker_config)
{
    gr_config *c = gr_config_new(gr_broker_config_defs, gr_broker_config_ndefs);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gr_config_set(c, "log.retention.minutes", "3", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(c, "log.message.timestamp.type", "LogAppendTime",
                                   GR_CFG_SRC_FILE), 0);
    ck_assert_int_ne(gr_config_set(c, "compression.type", "brotli", GR_CFG_SRC_FILE), 0);
    ck_assert_int_ne(gr_config_set(c, "log.cleanup.policy", "archive", GR_CFG_SRC_FILE), 0);
    gr_topic_settings s;
    gr_topic_settings_from_image(&s, NULL, gr_str_from("t"), 1, c);
    ck_assert_int_eq(s.log.retention_ms, 180000);
    ck_assert(s.log.log_append_time);
    ck_assert_int_eq(s.compression, GR_TOPIC_COMPRESSION_PRODUCER);
    gr_config_free(c);
}
END_TEST

Suite *topic_settings_suite(void)
{
    Suite *s = suite_create("topic_settings");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_kafka_defaults);
    tcase_add_test(tc, test_min_insync_replicas);
    tcase_add_test(tc, test_topic_wins_over_broker);
    tcase_add_test(tc, test_broker_precedence_and_units);
    tcase_add_test(tc, test_cleanup_policy);
    tcase_add_test(tc, test_bad_values_fall_back);
    tcase_add_test(tc, test_equal_inputs_compare_equal);
    tcase_add_test(tc, test_from_broker_config);
    suite_add_tcase(s, tc);
    return s;
}
