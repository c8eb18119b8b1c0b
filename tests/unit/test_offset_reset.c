/*
 * test_offset_reset.c - tools/offset_reset: the offset each reset mode of
 * `gregorctl group reset-offsets` picks (with kafka-consumer-groups'
 * clamping), and the ISO-8601 date-times --to-datetime accepts.
 */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "tests/unit/suites.h"
#include "tools/offset_reset.h"

static const gr_reset_partition P = {.committed = 40, .log_start = 10, .log_end = 100,
                                     .by_time = 55};

START_TEST(modes)
{
    ck_assert_int_eq(gr_reset_target(GR_RESET_EARLIEST, 0, &P), 10);
    ck_assert_int_eq(gr_reset_target(GR_RESET_LATEST, 0, &P), 100);
    ck_assert_int_eq(gr_reset_target(GR_RESET_TO_OFFSET, 70, &P), 70);
    ck_assert_int_eq(gr_reset_target(GR_RESET_SHIFT_BY, 5, &P), 45);
    ck_assert_int_eq(gr_reset_target(GR_RESET_SHIFT_BY, -15, &P), 25);
    ck_assert_int_eq(gr_reset_target(GR_RESET_TO_DATETIME, 0, &P), 55);
}
END_TEST

START_TEST(clamped_to_the_log)
{
    ck_assert_int_eq(gr_reset_target(GR_RESET_TO_OFFSET, 5, &P), 10);
    ck_assert_int_eq(gr_reset_target(GR_RESET_TO_OFFSET, 500, &P), 100);
    ck_assert_int_eq(gr_reset_target(GR_RESET_SHIFT_BY, -1000, &P), 10);
    ck_assert_int_eq(gr_reset_target(GR_RESET_SHIFT_BY, 1000, &P), 100);
    ck_assert_int_eq(gr_reset_target(GR_RESET_SHIFT_BY, INT64_MAX, &P), 100);
}
END_TEST

START_TEST(missing_inputs)
{
    gr_reset_partition p = P;
    p.committed = -1;
    p.by_time = -1;
    /* Nothing to shift from; no record at or after the time: the end. */
    ck_assert_int_eq(gr_reset_target(GR_RESET_SHIFT_BY, 3, &p), -1);
    ck_assert_int_eq(gr_reset_target(GR_RESET_TO_DATETIME, 0, &p), 100);
    ck_assert_int_eq(gr_reset_target(GR_RESET_NONE, 0, &p), -1);
}
END_TEST

START_TEST(datetimes_with_zones)
{
    int64_t ms;
    ck_assert(gr_reset_parse_datetime("1970-01-01T00:00:00Z", &ms));
    ck_assert_int_eq(ms, 0);
    ck_assert(gr_reset_parse_datetime("2024-02-29T12:34:56.789Z", &ms));
    ck_assert_int_eq(ms, 1709210096789LL);
    ck_assert(gr_reset_parse_datetime("2024-02-29T14:34:56.789+02:00", &ms));
    ck_assert_int_eq(ms, 1709210096789LL);
    ck_assert(gr_reset_parse_datetime("2024-02-29T07:04:56.789-0530", &ms));
    ck_assert_int_eq(ms, 1709210096789LL);
    ck_assert(gr_reset_parse_datetime("2024-02-29T12:34Z", &ms));
    ck_assert_int_eq(ms, 1709210040000LL);
    ck_assert(gr_reset_parse_datetime("2024-02-29T12:34:56.7Z", &ms));
    ck_assert_int_eq(ms, 1709210096700LL);
    ck_assert(gr_reset_parse_datetime("2024-02-29T12:34:56.789123Z", &ms));
    ck_assert_int_eq(ms, 1709210096789LL);
    ck_assert(gr_reset_parse_datetime("1969-12-31T23:59:59Z", &ms));
    ck_assert_int_eq(ms, -1000);
}
END_TEST

START_TEST(datetimes_local)
{
    /* Without a zone the time is local: as mktime reads it, whatever TZ is. */
    setenv("TZ", "America/New_York", 1);
    tzset();
    int64_t ms;
    ck_assert(gr_reset_parse_datetime("2024-07-01T08:00:00", &ms));
    ck_assert_int_eq(ms, 1719835200000LL); /* EDT: UTC-4 */
    ck_assert(gr_reset_parse_datetime("2024-01-01", &ms));
    ck_assert_int_eq(ms, 1704085200000LL); /* EST: UTC-5 */
    unsetenv("TZ");
    tzset();
}
END_TEST

START_TEST(datetimes_refused)
{
    static const char *const bad[] = {
        "", "2024", "2024-13-01", "2024-02-30", "2023-02-29", "2024-01-01T", "2024-01-01T24:00",
        "2024-01-01T10:60", "2024-01-01T10:00:61", "2024-01-01T10:00:00.", "2024-01-01 10:00",
        "2024-01-01T10:00:00Q", "2024-01-01T10:00:00+1", "2024-01-01T10:00:00+19:00",
        "2024-01-01T10:00:00Zjunk", "yesterday", "-2024-01-01",
    };
    int64_t ms = 42;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!gr_reset_parse_datetime(bad[i], &ms), "accepted '%s'", bad[i]);
    ck_assert(!gr_reset_parse_datetime(NULL, &ms));
    ck_assert_int_eq(ms, 42);
}
END_TEST

Suite *offset_reset_suite(void)
{
    Suite *s = suite_create("offset_reset");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, modes);
    tcase_add_test(tc, clamped_to_the_log);
    tcase_add_test(tc, missing_inputs);
    tcase_add_test(tc, datetimes_with_zones);
    tcase_add_test(tc, datetimes_local);
    tcase_add_test(tc, datetimes_refused);
    suite_add_tcase(s, tc);
    return s;
}
