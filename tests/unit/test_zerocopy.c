/*
 * test_zerocopy.c - responses whose record data comes from a file: the codec
 * leaves splice points where the file bytes belong (and sizes count them),
 * and the server sends those ranges from the file around the in-memory
 * bytes, releasing each range exactly once whatever happens to the
 * connection.
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
#include <time.h>
#include <unistd.h>

#include "common/api_versions.h"
#include "common/netserver.h"
#include "tests/unit/testnet.h"
#include "proto/codec.h"

Suite *zerocopy_suite(void);

/* ---- a temporary file of pseudo-random bytes, and its copy in memory ---- */

typedef struct {
    int fd;
    uint8_t *data;
    size_t len;
} tmpfile_t;

static void tmpfile_make(tmpfile_t *t, size_t len, uint32_t seed)
{
    char path[] = "/tmp/gregor-zerocopy-XXXXXX";
    t->fd = mkstemp(path);
    ck_assert_int_ge(t->fd, 0);
    unlink(path);
    t->len = len;
    t->data = malloc(len);
    ck_assert_ptr_nonnull(t->data);
    uint32_t x = seed | 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        t->data[i] = (uint8_t)x;
    }
    for (size_t at = 0; at < len;) {
        ssize_t n = write(t->fd, t->data + at, len - at);
        ck_assert_int_gt(n, 0);
        at += (size_t)n;
    }
}

static void tmpfile_free(tmpfile_t *t)
{
    close(t->fd);
    free(t->data);
}

/* Counts releases; every range in these tests names one of these. */
typedef struct {
    atomic_int releases;
} counter;

static void count_release(void *arg) { atomic_fetch_add(&((counter *)arg)->releases, 1); }

static int wait_releases(counter *c, int want)
{
    for (int i = 0; i < 400 && atomic_load(&c->releases) < want; i++)
        usleep(10000);
    usleep(20000); /* and no more than that */
    return atomic_load(&c->releases);
}

/* ---- codec ---- */

/* What a sender produces: the writer's bytes with each range read from the
 * file into its splice point. */
static uint8_t *flatten(const gr_writer *w, const gr_splices *s, size_t *len)
{
    size_t total = w->len;
    for (size_t i = 0; i < s->npoints; i++)
        total += (size_t)s->points[i].range->len;
    uint8_t *out = malloc(total ? total : 1);
    ck_assert_ptr_nonnull(out);
    size_t at = 0, o = 0;
    for (size_t i = 0; i <= s->npoints; i++) {
        size_t end = i < s->npoints ? s->points[i].pos : w->len;
        memcpy(out + o, w->p + at, end - at);
        o += end - at;
        at = end;
        if (i < s->npoints) {
            const gr_file_range *r = s->points[i].range;
            ck_assert_int_eq(pread(r->fd, out + o, (size_t)r->len, r->offset), r->len);
            o += (size_t)r->len;
        }
    }
    ck_assert_uint_eq(o, total);
    *len = total;
    return out;
}

/* A FetchResponse with two partitions around the file-backed one, so that
 * the splice point sits in the middle of the structure. */
static void fill_fetch(gr_fetch_response *m, gr_fetch_response_fetchable_topic_response *t,
                       gr_fetch_response_partition_data p[3], gr_bytes records)
{
    gr_fetch_response_init(m);
    gr_fetch_response_fetchable_topic_response_init(t);
    t->topic = gr_str_from("events");
    t->topic_id.b[15] = 7;
    for (int i = 0; i < 3; i++) {
        gr_fetch_response_partition_data_init(&p[i]);
        p[i].partition_index = i;
        p[i].high_watermark = 1000 + i;
        p[i].records = (gr_bytes){(const uint8_t *)"abc", 3};
    }
    p[1].records = records;
    p[1].current_leader.leader_id = 3; /* a tagged field after the records in v12 */
    p[1].current_leader.leader_epoch = 9;
    t->partitions = p;
    t->partitions_count = 3;
    m->responses = t;
    m->responses_count = 1;
}

static void check_fetch_version(int16_t version)
{
    tmpfile_t f;
    tmpfile_make(&f, 70000, 11);
    counter c = {0};
    gr_writer w;
    gr_writer_init(&w, 0);
    gr_splices s;
    gr_splices_init(&s, &w);
    const int64_t off = 1234;
    const size_t len = 50000;
    gr_bytes records;
    ck_assert_int_eq(gr_splices_add(&s, f.fd, off, len, count_release, &c, &records), GR_OK);
    ck_assert_int_eq(records.len, (int32_t)len);
    ck_assert_ptr_nonnull(gr_proto_file_range(records));

    gr_fetch_response m;
    gr_fetch_response_fetchable_topic_response t;
    gr_fetch_response_partition_data p[3];
    fill_fetch(&m, &t, p, records);
    gr_write_i32(&w, 42); /* something before, like a frame's header */
    ck_assert_int_eq(gr_fetch_response_encode(&m, version, &w), GR_OK);
    ck_assert_uint_eq(s.npoints, 1);
    ck_assert_uint_eq(gr_splices_trim(&s), len);
    size_t flat_len;
    uint8_t *flat = flatten(&w, &s, &flat_len);
    ck_assert_uint_eq(flat_len, 4 + gr_fetch_response_size(&m, version));
    ck_assert_uint_eq(w.len + len, flat_len); /* the file bytes are not in memory */

    /* The same response with the bytes in memory encodes identically. */
    gr_fetch_response mm;
    gr_fetch_response_fetchable_topic_response tm;
    gr_fetch_response_partition_data pm[3];
    fill_fetch(&mm, &tm, pm, (gr_bytes){f.data + off, (int32_t)len});
    gr_writer wm;
    gr_writer_init(&wm, 0);
    gr_write_i32(&wm, 42);
    ck_assert_int_eq(gr_fetch_response_encode(&mm, version, &wm), GR_OK);
    ck_assert_uint_eq(wm.len, flat_len);
    ck_assert_int_eq(memcmp(wm.p, flat, flat_len), 0);

    /* And it decodes to the file's bytes. */
    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, flat + 4, flat_len - 4);
    gr_fetch_response d;
    ck_assert_int_eq(gr_fetch_response_decode(&d, &r, version, &a), GR_OK);
    ck_assert_int_eq(d.responses[0].partitions[1].records.len, (int32_t)len);
    ck_assert_int_eq(memcmp(d.responses[0].partitions[1].records.ptr, f.data + off, len), 0);
    gr_arena_free(&a);

    ck_assert_int_eq(atomic_load(&c.releases), 0);
    gr_splices_free(&s);
    ck_assert_int_eq(atomic_load(&c.releases), 1);
    free(flat);
    gr_writer_free(&w);
    gr_writer_free(&wm);
    tmpfile_free(&f);
}

START_TEST(file_backed_records_encode_like_bytes_in_memory_v12) { check_fetch_version(12); }
END_TEST

START_TEST(file_backed_records_encode_like_bytes_in_memory_v4) { check_fetch_version(4); }
END_TEST

START_TEST(file_backed_values_are_refused_elsewhere_and_released_once)
{
    tmpfile_t f;
    tmpfile_make(&f, 4096, 5);
    counter c = {0};
    gr_writer w, other;
    gr_writer_init(&w, 0);
    gr_writer_init(&other, 0);
    gr_splices s;
    gr_splices_init(&s, &w);
    gr_bytes b;

    /* Nothing to send: an empty value, released at once. */
    ck_assert_int_eq(gr_splices_add(&s, f.fd, 0, 0, count_release, &c, &b), GR_OK);
    ck_assert_int_eq(b.len, 0);
    ck_assert_ptr_null(gr_proto_file_range(b));
    ck_assert_int_eq(atomic_load(&c.releases), 1);
    /* Too long: refused, released at once. */
    ck_assert_int_eq(gr_splices_add(&s, f.fd, 0, (size_t)INT32_MAX + 1, count_release, &c, &b),
                     GR_ERR_MALFORMED);
    ck_assert_int_eq(atomic_load(&c.releases), 2);

    ck_assert_int_eq(gr_splices_add(&s, f.fd, 10, 100, count_release, &c, &b), GR_OK);
    /* Another writer, or a changed length, is refused without writing. */
    ck_assert_int_eq(gr_proto_write_bytes(&other, false, true, b), GR_ERR_MALFORMED);
    ck_assert_int_eq(gr_proto_write_bytes(&w, false, true, (gr_bytes){b.ptr, 99}),
                     GR_ERR_MALFORMED);
    ck_assert_uint_eq(other.len + w.len, 0);
    /* Sizes count it like bytes. */
    ck_assert_uint_eq(gr_proto_bytes_size(false, b), 104);
    ck_assert_uint_eq(gr_proto_bytes_size(true, b), 1 + 100);
    /* Written twice after a rollback: the stale point goes. */
    ck_assert_int_eq(gr_proto_write_bytes(&w, true, true, b), GR_OK);
    ck_assert_uint_eq(s.npoints, 1);
    ck_assert_uint_eq(s.points[0].pos, 1);
    w.len = 0;
    ck_assert_uint_eq(gr_splices_trim(&s), 0);
    ck_assert_int_eq(gr_proto_write_bytes(&w, false, true, b), GR_OK);
    ck_assert_uint_eq(s.npoints, 1);
    ck_assert_uint_eq(s.points[0].pos, 4);
    ck_assert_uint_eq(gr_splices_trim(&s), 100);

    /* A sender's reference keeps the range past the table. */
    gr_file_range *r = gr_proto_file_range(b);
    ck_assert_ptr_nonnull(r);
    gr_file_range_ref(r);
    gr_splices_free(&s);
    ck_assert_int_eq(atomic_load(&c.releases), 2);
    /* The marker now names nothing: refused, never read as data. */
    ck_assert_ptr_null(gr_proto_file_range(b));
    ck_assert_int_eq(gr_proto_write_bytes(&other, false, true, b), GR_ERR_MALFORMED);
    gr_file_range_unref(r);
    ck_assert_int_eq(atomic_load(&c.releases), 3);

    /* In-memory bytes are untouched by all this. */
    uint8_t data[3] = {1, 2, 3};
    ck_assert_ptr_null(gr_proto_file_range((gr_bytes){data, 3}));
    ck_assert_int_eq(gr_proto_write_bytes(&other, false, true, (gr_bytes){data, 3}), GR_OK);
    ck_assert_uint_eq(other.len, 7);
    gr_writer_free(&w);
    gr_writer_free(&other);
    tmpfile_free(&f);
}
END_TEST

/* ---- the server ---- */

/* What the Fetch handler below serves: for correlation id n, the range
 * [n * 4096, n * 4096 + len - n) of the file, inside a FetchResponse. */
typedef struct {
    tmpfile_t file;
    size_t len;
    counter released;
    atomic_int handled;
    bool close_after; /* handlers answer GR_CLOSE after adding the range */
    bool pending;     /* handlers answer 50 ms later */
} fetch_ctx;

static int64_t range_offset(int32_t corr) { return (int64_t)corr * 4096; }
static size_t range_len(const fetch_ctx *fc, int32_t corr) { return fc->len - (size_t)corr; }

static int encode_fetch(gr_request *req, gr_bytes records)
{
    gr_fetch_response m;
    gr_fetch_response_fetchable_topic_response t;
    gr_fetch_response_partition_data p[3];
    fill_fetch(&m, &t, p, records);
    if (gr_fetch_response_encode(&m, req->api_version, &req->out) != GR_OK)
        return GR_CLOSE;
    return GR_HANDLED;
}

/* A long poll's answer: the range was read when the request arrived. */
typedef struct {
    gr_request *req;
    gr_bytes records;
} later;

static void complete_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    later *l = arg;
    gr_request_complete(l->req, encode_fetch(l->req, l->records));
}

static int handle_fetch(gr_request *req, gr_writer *out)
{
    (void)out;
    fetch_ctx *fc = req->ctx;
    int32_t corr = req->header.correlation_id;
    atomic_fetch_add(&fc->handled, 1);
    gr_bytes records;
    if (gr_request_file_records(req, fc->file.fd, range_offset(corr), range_len(fc, corr),
                                count_release, &fc->released, &records) != GR_OK)
        return GR_CLOSE;
    if (fc->close_after)
        return GR_CLOSE;
    if (fc->pending) {
        later *l = gr_arena_alloc(&req->arena, sizeof *l);
        if (!l)
            return GR_CLOSE;
        *l = (later){req, records};
        struct timeval tv = {0, 50000};
        return event_base_once(gr_request_base(req), -1, EV_TIMEOUT, complete_later, l, &tv) == 0
                   ? GR_PENDING
                   : GR_CLOSE;
    }
    return encode_fetch(req, records);
}

static const gr_api_handler handlers[] = {
    {GR_API_FETCH, 4, 12, handle_fetch},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
};
static const gr_api_table apis = {handlers, 2};

static void server_start(gr_test_server *s, int threads, fetch_ctx *fc)
{
    gr_test_server_start(s, &apis, threads, fc);
}

/* A small receive buffer, so that the server's sends come out partial. */
static int dial(int port) { return gr_test_dial(port, 10, 64 << 10); }

/* Fetch v4 request frames (header v1, body ignored by the handler). */
static void append_fetch_request(gr_writer *w, int32_t corr)
{
    size_t start = w->len;
    gr_write_i32(w, 0);
    gr_write_i16(w, GR_API_FETCH);
    gr_write_i16(w, 4);
    gr_write_i32(w, corr);
    gr_write_i16(w, -1);
    gr_write_i32_at(w, start, (int32_t)(w->len - start - 4));
}

static void send_fetches(int fd, int32_t first, int32_t n)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    for (int32_t i = 0; i < n; i++)
        append_fetch_request(&w, first + i);
    ck_assert_int_eq(write(fd, w.p, w.len), (ssize_t)w.len);
    gr_writer_free(&w);
}

/* Reads one Fetch v4 response and checks it is exactly the one the handler
 * encodes for corr, with the file's bytes where the records belong. */
static void recv_fetch(int fd, const fetch_ctx *fc, int32_t corr)
{
    uint8_t hdr[4];
    ck_assert_int_eq(gr_test_recv_all(fd, hdr, 4), 0);
    int32_t size = (int32_t)((uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3]);
    size_t len = range_len(fc, corr);
    int64_t off = range_offset(corr);

    gr_fetch_response m;
    gr_fetch_response_fetchable_topic_response t;
    gr_fetch_response_partition_data p[3];
    fill_fetch(&m, &t, p, (gr_bytes){fc->file.data + off, (int32_t)len});
    gr_writer want;
    gr_writer_init(&want, 0);
    gr_write_i32(&want, corr); /* response header v0 */
    ck_assert_int_eq(gr_fetch_response_encode(&m, 4, &want), GR_OK);
    ck_assert_int_eq(size, (int32_t)want.len);

    uint8_t *got = malloc((size_t)size);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(gr_test_recv_all(fd, got, (size_t)size), 0);
    ck_assert_int_eq(memcmp(got, want.p, want.len), 0);
    free(got);
    gr_writer_free(&want);
}

static void fetch_ctx_init(fetch_ctx *fc, size_t file_len, size_t len)
{
    memset(fc, 0, sizeof *fc);
    tmpfile_make(&fc->file, file_len, 99);
    fc->len = len;
}

static void check_large_response(int threads)
{
    fetch_ctx fc;
    fetch_ctx_init(&fc, 9u << 20, 8u << 20);
    gr_test_server s;
    server_start(&s, threads, &fc);
    int fd = dial(s.port);
    send_fetches(fd, 1, 1);
    /* 8 MiB cannot all be in flight while the client does not read, so
     * the range is still held by the sender. */
    usleep(200000);
    ck_assert_int_eq(atomic_load(&fc.handled), 1);
    ck_assert_int_eq(atomic_load(&fc.released.releases), 0);
    recv_fetch(fd, &fc, 1);
    ck_assert_int_eq(wait_releases(&fc.released, 1), 1);
    /* The connection serves on afterwards. */
    send_fetches(fd, 2, 1);
    recv_fetch(fd, &fc, 2);
    ck_assert_int_eq(wait_releases(&fc.released, 2), 2);
    close(fd);
    gr_test_server_stop(&s);
    ck_assert_int_eq(atomic_load(&fc.released.releases), 2);
    tmpfile_free(&fc.file);
}

START_TEST(large_file_range_arrives_whole_and_is_released_after_sending_threads)
{
    check_large_response(1);
}
END_TEST

START_TEST(large_file_range_arrives_whole_and_is_released_after_sending_callers_loop)
{
    check_large_response(0);
}
END_TEST

static void check_disconnect(int threads)
{
    fetch_ctx fc;
    fetch_ctx_init(&fc, 9u << 20, 8u << 20);
    gr_test_server s;
    server_start(&s, threads, &fc);
    int fd = dial(s.port);
    send_fetches(fd, 1, 3); /* one being sent, two queued behind it */
    uint8_t buf[100000];
    ck_assert_int_eq(gr_test_recv_all(fd, buf, sizeof buf), 0);
    usleep(100000);
    ck_assert_int_lt(atomic_load(&fc.released.releases), 3);
    close(fd); /* mid-transfer */
    int handled = atomic_load(&fc.handled);
    ck_assert_int_ge(handled, 1);
    ck_assert_int_eq(wait_releases(&fc.released, handled), handled);
    gr_test_server_stop(&s);
    ck_assert_int_eq(atomic_load(&fc.released.releases), atomic_load(&fc.handled));
    tmpfile_free(&fc.file);
}

START_TEST(client_leaving_mid_transfer_releases_once_threads) { check_disconnect(1); }
END_TEST

START_TEST(client_leaving_mid_transfer_releases_once_callers_loop) { check_disconnect(0); }
END_TEST

START_TEST(pipelined_requests_keep_order)
{
    fetch_ctx fc;
    fetch_ctx_init(&fc, 2u << 20, 1u << 20);
    gr_test_server s;
    server_start(&s, 1, &fc);
    int fd = dial(s.port);
    const int32_t n = 40;
    send_fetches(fd, 1, n);
    for (int32_t i = 1; i <= n; i++)
        recv_fetch(fd, &fc, i);
    ck_assert_int_eq(wait_releases(&fc.released, n), n);
    /* Nothing more. */
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint8_t b;
    ck_assert_int_le(read(fd, &b, 1), 0);
    close(fd);
    gr_test_server_stop(&s);
    tmpfile_free(&fc.file);
}
END_TEST

START_TEST(ranges_of_unsent_responses_are_released_once)
{
    fetch_ctx fc;
    fetch_ctx_init(&fc, 1u << 20, 1000);
    fc.close_after = true;
    gr_test_server s;
    server_start(&s, 1, &fc);
    int fd = dial(s.port);
    send_fetches(fd, 1, 1);
    uint8_t b;
    ck_assert_int_le(read(fd, &b, 1), 0); /* closed, nothing sent */
    ck_assert_int_eq(wait_releases(&fc.released, 1), 1);
    close(fd);
    gr_test_server_stop(&s);
    tmpfile_free(&fc.file);
}
END_TEST

START_TEST(pending_answers_send_ranges_and_release_when_the_client_left)
{
    fetch_ctx fc;
    fetch_ctx_init(&fc, 2u << 20, 1u << 20);
    fc.pending = true;
    gr_test_server s;
    server_start(&s, 1, &fc);
    int fd = dial(s.port);
    send_fetches(fd, 1, 3);
    for (int32_t i = 1; i <= 3; i++)
        recv_fetch(fd, &fc, i);
    ck_assert_int_eq(wait_releases(&fc.released, 3), 3);
    send_fetches(fd, 4, 1);
    close(fd); /* gone before the answer */
    ck_assert_int_eq(wait_releases(&fc.released, 4), 4);
    gr_test_server_stop(&s);
    ck_assert_int_eq(atomic_load(&fc.released.releases), 4);
    tmpfile_free(&fc.file);
}
END_TEST

static void check_stop_with_unsent(int threads)
{
    fetch_ctx fc;
    fetch_ctx_init(&fc, 9u << 20, 8u << 20);
    gr_test_server s;
    server_start(&s, threads, &fc);
    int fd = dial(s.port);
    send_fetches(fd, 1, 2);
    usleep(200000);
    int handled = atomic_load(&fc.handled);
    ck_assert_int_ge(handled, 1);
    ck_assert_int_eq(atomic_load(&fc.released.releases), 0);
    gr_test_server_stop(&s); /* with most of the ranges unsent and the client still there */
    ck_assert_int_eq(atomic_load(&fc.released.releases), handled);
    close(fd);
    tmpfile_free(&fc.file);
}

START_TEST(stopping_the_server_releases_unsent_ranges_threads) { check_stop_with_unsent(1); }
END_TEST

START_TEST(stopping_the_server_releases_unsent_ranges_callers_loop) { check_stop_with_unsent(0); }
END_TEST

Suite *zerocopy_suite(void)
{
    Suite *s = suite_create("zerocopy");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, file_backed_records_encode_like_bytes_in_memory_v12);
    tcase_add_test(tc, file_backed_records_encode_like_bytes_in_memory_v4);
    tcase_add_test(tc, file_backed_values_are_refused_elsewhere_and_released_once);
    tcase_add_test(tc, large_file_range_arrives_whole_and_is_released_after_sending_threads);
    tcase_add_test(tc, large_file_range_arrives_whole_and_is_released_after_sending_callers_loop);
    tcase_add_test(tc, client_leaving_mid_transfer_releases_once_threads);
    tcase_add_test(tc, client_leaving_mid_transfer_releases_once_callers_loop);
    tcase_add_test(tc, pipelined_requests_keep_order);
    tcase_add_test(tc, ranges_of_unsent_responses_are_released_once);
    tcase_add_test(tc, pending_answers_send_ranges_and_release_when_the_client_left);
    tcase_add_test(tc, stopping_the_server_releases_unsent_ranges_threads);
    tcase_add_test(tc, stopping_the_server_releases_unsent_ranges_callers_loop);
    suite_add_tcase(s, tc);
    return s;
}
