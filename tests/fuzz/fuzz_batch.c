/*
 * fuzz_batch.c - libFuzzer harness over the record batch validator, the
 * record iterator, the per-record policy checks and the re-encoding with
 * another codec: whatever the bytes, validation answers with a result and
 * iteration ends, without reading outside the input or allocating beyond the
 * decompression bound; a valid batch re-encodes into a valid batch of the
 * same records.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/batch.h"
#include "common/buf.h"

#define MAX_UNCOMPRESSED (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gr_batch_header h;
    gr_batch_result deep = gr_batch_validate(data, size, true, MAX_UNCOMPRESSED, &h);
    gr_batch_result shallow = gr_batch_validate(data, size, false, MAX_UNCOMPRESSED, &h);
    if (deep == GR_BATCH_OK && shallow != GR_BATCH_OK)
        abort(); /* deep validation implies shallow validation */

    /* The iterator must be safe on anything, valid or not. */
    gr_record_iter it;
    if (gr_record_iter_init(&it, data, size, MAX_UNCOMPRESSED) == GR_BATCH_OK) {
        gr_record rec;
        gr_batch_result err;
        int32_t n = 0;
        while (gr_record_iter_next(&it, &rec, &err) == 1)
            n++;
        if (deep == GR_BATCH_OK && n != h.record_count)
            abort(); /* a valid batch yields exactly its records */
    }
    gr_record_iter_free(&it);

    /* Every rule on: whatever the records, a count or -1, never a crash. */
    gr_batch_record_policy pol = {.now_ms = 1700000000000, .create_time = true,
                                  .before_max_ms = 1000, .after_max_ms = 1000,
                                  .require_key = true};
    int bad = gr_batch_check_records(data, size, MAX_UNCOMPRESSED, &pol, NULL, NULL);
    if (deep == GR_BATCH_OK && (bad < 0 || bad > h.record_count))
        abort();

    /* Re-encoding refuses what does not validate and keeps what does. */
    gr_writer w;
    gr_writer_init(&w, 0);
    int rc = gr_batch_recompress(data, size, GR_CODEC_NONE, -1, MAX_UNCOMPRESSED, &w);
    if (shallow != GR_BATCH_OK && (rc == GR_OK || w.len != 0))
        abort();
    if (deep == GR_BATCH_OK) {
        gr_batch_header h2;
        if (rc != GR_OK || gr_batch_validate(w.p, w.len, true, MAX_UNCOMPRESSED, &h2) !=
                               GR_BATCH_OK || h2.record_count != h.record_count)
            abort();
    }
    gr_writer_free(&w);
    return 0;
}
