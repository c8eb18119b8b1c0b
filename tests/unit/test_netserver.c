/*
 * test_netserver.c - the network layer with a real socket: framing limits,
 * in-order answers when a handler completes later, and clients that leave
 * while their request is pending.
 */
#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/api_versions.h"
#include "common/netserver.h"
#include "tests/unit/suites.h"
#include "tests/unit/testnet.h"

/* A handler that answers Metadata 50 ms later, from a timer on the
 * connection's loop, with an empty body. */
static void complete_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_request_complete(arg, GR_HANDLED);
}

static int slow_metadata(gr_request *req, gr_writer *out)
{
    (void)out;
    struct timeval tv = {0, 50000};
    return event_base_once(gr_request_base(req), -1, EV_TIMEOUT, complete_later, req, &tv) == 0
               ? GR_PENDING
               : GR_CLOSE;
}

/* A state machine that answers before its handler returns (the quorum's
 * handlers do this when the core replies at once). */
static int eager_describe_cluster(gr_request *req, gr_writer *out)
{
    (void)out;
    gr_request_complete(req, GR_HANDLED);
    return GR_PENDING;
}

/* A handler that waits for nothing but its client leaving (a long poll with
 * a far deadline): only the gone hook completes it. */
static atomic_int gone_calls;

static void on_gone(gr_request *req, void *arg)
{
    ck_assert_ptr_eq(arg, req);
    ck_assert_ptr_null(gr_request_base(req)); /* already detached */
    atomic_fetch_add(&gone_calls, 1);
    gr_request_complete(req, GR_HANDLED); /* frees it */
}

static int endless_list_groups(gr_request *req, gr_writer *out)
{
    (void)out;
    gr_request_on_gone(req, on_gone, req);
    return GR_PENDING;
}

static const gr_api_handler handlers[] = {
    {GR_API_METADATA, 0, 12, slow_metadata},
    {GR_API_LIST_GROUPS, 0, 5, endless_list_groups},
    {GR_API_DESCRIBE_CLUSTER, 0, 1, eager_describe_cluster},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
};
static const gr_api_table apis = {handlers, 4};

static void server_start(gr_test_server *s, int threads)
{
    gr_test_server_start(s, &apis, threads, NULL);
}

static int dial(int port) { return gr_test_dial(port, 5, 0); }

/* A request frame: size, header v1 (key, version, correlation id, null
 * client id), then an empty body for the versions used here. */
static void send_request(int fd, int16_t key, int16_t version, int32_t corr)
{
    gr_writer w;
    gr_writer_init(&w, 32);
    gr_write_i32(&w, 0);
    gr_write_i16(&w, key);
    gr_write_i16(&w, version);
    gr_write_i32(&w, corr);
    gr_write_i16(&w, -1);
    if (key == GR_API_METADATA)
        gr_write_i32(&w, 0); /* v1: an empty topic array */
    if (key == GR_API_DESCRIBE_CLUSTER)
        gr_write_i8(&w, 0); /* include_cluster_authorized_operations, then no tags */
    gr_write_i32_at(&w, 0, (int32_t)(w.len - 4));
    ck_assert_int_eq(write(fd, w.p, w.len), (ssize_t)w.len);
    gr_writer_free(&w);
}

/* Reads one response frame; returns its correlation id, or -1 on EOF. */
static int32_t recv_correlation(int fd)
{
    uint8_t hdr[8];
    if (gr_test_recv_all(fd, hdr, 8) != 0)
        return -1;
    int32_t size = (int32_t)((uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3]);
    uint8_t *rest = malloc((size_t)size);
    ck_assert_int_eq(gr_test_recv_all(fd, rest, (size_t)size - 4), 0);
    free(rest);
    return (int32_t)((uint32_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7]);
}

static void check_in_order(int threads)
{
    gr_test_server s;
    server_start(&s, threads);
    int fd = dial(s.port);
    /* The pending Metadata is pipelined between two immediate requests,
     * the later ones arriving while it is pending: the answers must still
     * come back in request order, each exactly once. */
    send_request(fd, GR_API_API_VERSIONS, 0, 1);
    send_request(fd, GR_API_METADATA, 1, 2);
    usleep(10000);
    send_request(fd, GR_API_API_VERSIONS, 0, 3);
    usleep(10000);
    send_request(fd, GR_API_METADATA, 1, 4);
    for (int32_t want = 1; want <= 4; want++)
        ck_assert_int_eq(recv_correlation(fd), want);
    /* Nothing more: no request was handled twice. */
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(recv_correlation(fd), -1);
    close(fd);
    gr_test_server_stop(&s);
}

START_TEST(pending_answers_keep_request_order_on_network_threads) { check_in_order(2); }
END_TEST

START_TEST(pending_answers_keep_request_order_on_the_callers_loop) { check_in_order(0); }
END_TEST

START_TEST(completion_inside_the_handler_answers_once)
{
    gr_test_server s;
    server_start(&s, 0);
    int fd = dial(s.port);
    /* One at a time: each request must find the connection ready again. */
    for (int32_t i = 1; i <= 3; i++) {
        send_request(fd, GR_API_DESCRIBE_CLUSTER, 0, i);
        ck_assert_int_eq(recv_correlation(fd), i);
    }
    send_request(fd, GR_API_API_VERSIONS, 0, 4);
    ck_assert_int_eq(recv_correlation(fd), 4);
    close(fd);
    gr_test_server_stop(&s);
}
END_TEST

START_TEST(client_leaving_while_pending_is_harmless)
{
    gr_test_server s;
    server_start(&s, 1);
    int fd = dial(s.port);
    send_request(fd, GR_API_METADATA, 1, 7);
    close(fd); /* gone before the answer */
    usleep(100000);
    /* The server still serves others. */
    fd = dial(s.port);
    send_request(fd, GR_API_API_VERSIONS, 0, 8);
    ck_assert_int_eq(recv_correlation(fd), 8);
    close(fd);
    gr_test_server_stop(&s);
}
END_TEST

/* A client leaving while its request waits, with reading paused, is
 * noticed at once: the request's gone hook runs (and completes it) long
 * before any deadline of its own. */
static void check_gone_noticed(int threads)
{
    gr_test_server s;
    atomic_store(&gone_calls, 0);
    server_start(&s, threads);
    int fd = dial(s.port);
    send_request(fd, GR_API_LIST_GROUPS, 0, 9);
    usleep(50000); /* pending */
    int calls = atomic_load(&gone_calls);
    ck_assert_int_eq(calls, 0);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&gone_calls) == 0; i++)
        usleep(10000);
    calls = atomic_load(&gone_calls);
    ck_assert_int_eq(calls, 1);
    /* The server still serves others. */
    fd = dial(s.port);
    send_request(fd, GR_API_API_VERSIONS, 0, 10);
    ck_assert_int_eq(recv_correlation(fd), 10);
    close(fd);
    gr_test_server_stop(&s);
    calls = atomic_load(&gone_calls);
    ck_assert_int_eq(calls, 1); /* once */
}

START_TEST(client_leaving_while_pending_is_noticed_at_once) { check_gone_noticed(1); }
END_TEST

START_TEST(client_leaving_while_pending_is_noticed_on_the_callers_loop) { check_gone_noticed(0); }
END_TEST

/* A server stopping with a request still pending calls its gone hook:
 * nothing is left holding it. */
START_TEST(stopping_with_a_pending_request_calls_its_gone_hook)
{
    gr_test_server s;
    atomic_store(&gone_calls, 0);
    server_start(&s, 1);
    int fd = dial(s.port);
    send_request(fd, GR_API_LIST_GROUPS, 0, 11);
    usleep(50000);
    gr_test_server_stop(&s);
    int calls = atomic_load(&gone_calls);
    ck_assert_int_eq(calls, 1);
    close(fd);
}
END_TEST

START_TEST(oversized_and_unknown_requests_close_only_their_connection)
{
    gr_test_server s;
    server_start(&s, 1);
    int bad = dial(s.port);
    uint8_t big[4] = {0, 0, 4, 1}; /* 1025 > max_request_bytes */
    ck_assert_int_eq(write(bad, big, 4), 4);
    ck_assert_int_eq(recv_correlation(bad), -1);
    close(bad);
    bad = dial(s.port);
    send_request(bad, 9999, 0, 5);
    ck_assert_int_eq(recv_correlation(bad), -1);
    close(bad);
    int good = dial(s.port);
    send_request(good, GR_API_API_VERSIONS, 0, 6);
    ck_assert_int_eq(recv_correlation(good), 6);
    close(good);
    gr_test_server_stop(&s);
}
END_TEST

Suite *netserver_suite(void)
{
    Suite *s = suite_create("netserver");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, pending_answers_keep_request_order_on_network_threads);
    tcase_add_test(tc, pending_answers_keep_request_order_on_the_callers_loop);
    tcase_add_test(tc, completion_inside_the_handler_answers_once);
    tcase_add_test(tc, client_leaving_while_pending_is_harmless);
    tcase_add_test(tc, client_leaving_while_pending_is_noticed_at_once);
    tcase_add_test(tc, client_leaving_while_pending_is_noticed_on_the_callers_loop);
    tcase_add_test(tc, stopping_with_a_pending_request_calls_its_gone_hook);
    tcase_add_test(tc, oversized_and_unknown_requests_close_only_their_connection);
    suite_add_tcase(s, tc);
    return s;
}
