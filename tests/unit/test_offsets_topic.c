/*
 * test_offsets_topic.c - broker/offsets_topic: Java's String.hashCode and
 * the coordinator partition, against values Java computes (ASCII, a BMP
 * character, a character outside the BMP that Java sees as a surrogate
 * pair, a negative hash).
 */
#include <check.h>
#include <string.h>

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

Suite *offsets_topic_suite(void)
{
    Suite *s = suite_create("offsets_topic");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, java_hash_values);
    tcase_add_test(tc, coordinator_partitions);
    tcase_add_test(tc, invalid_utf8_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}
