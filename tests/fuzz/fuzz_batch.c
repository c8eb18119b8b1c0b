/*
 * fuzz_batch.c - libFuzzer harness over the record batch validator and the
 * record iterator: whatever the bytes, validation answers with a result and
 * iteration ends, without reading outside the input or allocating beyond the
 * decompression bound.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/batch.h"

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
    return 0;
}
