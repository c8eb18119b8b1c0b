/*
 * mdentry.c - metadata log entries: batches of framed metadata records
 * (see mdentry.h).
 */
#include "common/mdentry.h"

void gr_mdentry_builder_init(gr_mdentry_builder *b, gr_writer *w)
{
    b->w = w;
    b->count = 0;
    b->err = GR_OK;
}

int gr_mdentry_add(gr_mdentry_builder *b, int16_t type, int16_t version, const void *record)
{
    if (b->err)
        return b->err;
    size_t n = gr_metadata_record_size(type, version, record);
    if (n == 0 || n > UINT32_MAX) {
        b->err = GR_ERR_VERSION;
        return b->err;
    }
    gr_write_uvarint(b->w, (uint32_t)n);
    size_t start = b->w->len;
    int err = gr_metadata_record_encode(type, version, record, b->w);
    if (err == GR_OK && !gr_writer_ok(b->w))
        err = b->w->err;
    if (err == GR_OK && b->w->len - start != n)
        err = GR_ERR_MALFORMED; /* size and encoder disagree: a codec bug */
    if (err) {
        b->err = err;
        return err;
    }
    b->count++;
    return GR_OK;
}

int gr_mdentry_add_latest(gr_mdentry_builder *b, int16_t type, const void *record)
{
    const gr_metadata_record_info *info = gr_metadata_record_lookup(type);
    if (!info) {
        if (!b->err)
            b->err = GR_ERR_VERSION;
        return b->err;
    }
    return gr_mdentry_add(b, type, info->max_version, record);
}

int gr_mdentry_finish(gr_mdentry_builder *b)
{
    if (b->err)
        return b->err;
    return gr_writer_ok(b->w) ? GR_OK : b->w->err;
}

void gr_mdentry_iter_init(gr_mdentry_iter *it, const uint8_t *entry, size_t len)
{
    gr_reader_init(&it->r, entry, len);
}

int gr_mdentry_next(gr_mdentry_iter *it, const uint8_t **frame, size_t *len)
{
    if (it->r.err)
        return GR_METADATA_ERR_DECODE;
    if (gr_reader_remaining(&it->r) == 0)
        return 0;
    uint32_t n;
    if (gr_read_uvarint(&it->r, &n) != GR_OK || n == 0 || gr_read_raw(&it->r, n, frame) != GR_OK) {
        it->r.err = GR_ERR_TRUNCATED;
        return GR_METADATA_ERR_DECODE;
    }
    *len = n;
    return 1;
}

static int check_frame(const uint8_t *frame, size_t len)
{
    gr_reader r;
    gr_reader_init(&r, frame, len);
    gr_arena a;
    gr_arena_init(&a);
    int16_t type, version;
    void *m = NULL;
    int err = gr_metadata_record_decode(&r, &a, &type, &version, &m);
    switch (err) {
    case GR_OK: err = gr_reader_remaining(&r) ? GR_METADATA_ERR_DECODE : GR_METADATA_OK; break;
    case GR_ERR_VERSION: err = GR_METADATA_ERR_VERSION; break;
    case GR_ERR_NOMEM: err = GR_METADATA_ERR_NOMEM; break;
    default: err = GR_METADATA_ERR_DECODE; break;
    }
    gr_arena_free(&a);
    return err;
}

int gr_mdentry_check(const uint8_t *entry, size_t len, int32_t *count)
{
    gr_mdentry_iter it;
    gr_mdentry_iter_init(&it, entry, len);
    const uint8_t *f;
    size_t n;
    int32_t c = 0;
    int rc;
    while ((rc = gr_mdentry_next(&it, &f, &n)) == 1) {
        int err = check_frame(f, n);
        if (err)
            return err;
        c++;
    }
    if (rc < 0)
        return rc;
    if (count)
        *count = c;
    return GR_METADATA_OK;
}

int gr_mdentry_apply(gr_metadata_image *img, const uint8_t *entry, size_t len, int64_t offset,
                     int32_t epoch)
{
    int err = gr_mdentry_check(entry, len, NULL);
    if (err)
        return err;
    gr_mdentry_iter it;
    gr_mdentry_iter_init(&it, entry, len);
    const uint8_t *f;
    size_t n;
    int first = GR_METADATA_OK;
    while (gr_mdentry_next(&it, &f, &n) == 1) {
        int e = gr_metadata_apply(img, f, n, offset, epoch);
        if (e && !first)
            first = e;
    }
    return first;
}
