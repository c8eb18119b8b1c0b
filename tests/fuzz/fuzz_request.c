/*
 * fuzz_request.c - libFuzzer harness for the request decoder.
 *
 * An input is a request frame without its int32 size prefix: a request header
 * and a request body, exactly as a broker reads them off a connection. The
 * harness picks the header version from the API key and version (the first
 * four bytes, as the broker does), decodes the header and the body, and
 * checks the codec's invariants on everything that decodes:
 *   - the arena holds at most a small multiple of the input (no allocation
 *     of an attacker-chosen size);
 *   - re-encoding succeeds, and writes exactly size() bytes;
 *   - the re-encoded bytes decode again, consuming all of them, and encode
 *     to the same bytes (encoding is a fixed point after one round).
 * A broken invariant aborts, which libFuzzer reports as a crash.
 * The sanitizers catch reads past the input and other memory errors.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

/* The largest decoded struct is a few dozen bytes for each element that
 * takes at least one byte of input; anything far beyond that is a bug. */
static bool arena_bounded(const gr_arena *a, size_t input)
{
    return a->total <= 64 * input + 4096;
}

/* Encodes a decoded body, decodes the result and encodes that again. */
static void check_body(int16_t key, int16_t version, const void *body)
{
    gr_writer w1, w2;
    gr_writer_init(&w1, 0);
    gr_writer_init(&w2, 0);
    require(gr_request_encode(key, version, body, &w1) == GR_OK);
    require(gr_request_size(key, version, body) == w1.len);

    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, w1.p, w1.len);
    void *again = NULL;
    require(gr_request_decode(key, version, &r, &a, &again) == GR_OK);
    require(r.pos == w1.len);
    require(gr_request_size(key, version, again) == w1.len);
    require(gr_request_encode(key, version, again, &w2) == GR_OK);
    require(w2.len == w1.len && (w1.len == 0 || memcmp(w1.p, w2.p, w1.len) == 0));
    gr_arena_free(&a);
    gr_writer_free(&w1);
    gr_writer_free(&w2);
}

static void check_header(const gr_request_header *h, int16_t header_version)
{
    gr_writer w;
    gr_writer_init(&w, 0);
    require(gr_request_header_encode(h, header_version, &w) == GR_OK);
    require(gr_request_header_size(h, header_version) == w.len);
    gr_writer_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int16_t key = (int16_t)((data[0] << 8) | data[1]);
    int16_t version = (int16_t)((data[2] << 8) | data[3]);
    int16_t header_version = gr_request_header_version(key, version);
    if (header_version < 0)
        return 0; /* unknown API key: the broker closes the connection */

    gr_arena a;
    gr_arena_init(&a);
    gr_reader r;
    gr_reader_init(&r, data, size);
    gr_request_header h;
    if (gr_request_header_decode(&h, &r, header_version, &a) == GR_OK) {
        require(h.request_api_key == key && h.request_api_version == version);
        check_header(&h, header_version);
        void *body = NULL;
        int err = gr_request_decode(key, version, &r, &a, &body);
        require(arena_bounded(&a, size));
        if (err == GR_OK)
            check_body(key, version, body);
        else
            require(err == GR_ERR_TRUNCATED || err == GR_ERR_MALFORMED || err == GR_ERR_VERSION);
    }
    gr_arena_free(&a);
    return 0;
}
