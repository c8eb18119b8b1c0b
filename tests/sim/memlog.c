/* memlog.c - see memlog.h. */
#include "tests/sim/memlog.h"

#include <stdlib.h>
#include <string.h>

void memlog_init(memlog *l)
{
    memset(l, 0, sizeof *l);
    l->snap.end_offset = -1;
    l->snap.epoch = -1;
    l->in_id.end_offset = -1;
}

static void drop_from(memlog *l, size_t i)
{
    for (size_t k = i; k < l->n; k++)
        free(l->ents[k].data);
    l->n = i;
}

void memlog_free(memlog *l)
{
    drop_from(l, 0);
    free(l->ents);
    free(l->snap_data);
    free(l->in_data);
    memset(l, 0, sizeof *l);
}

int64_t memlog_end(const memlog *l) { return l->start + (int64_t)l->n; }

const memlog_entry *memlog_at(const memlog *l, int64_t offset)
{
    if (offset < l->start || offset >= memlog_end(l))
        return NULL;
    return &l->ents[offset - l->start];
}

int32_t memlog_prev_epoch(const memlog *l, int64_t offset)
{
    const memlog_entry *e = memlog_at(l, offset - 1);
    if (e)
        return e->epoch;
    if (l->snap.end_offset == offset)
        return l->snap.epoch;
    return 0;
}

void memlog_flush(memlog *l) { l->durable_end = memlog_end(l); }

void memlog_crash(memlog *l)
{
    if (l->durable_end < l->start)
        l->durable_end = l->start;
    if (l->durable_end < memlog_end(l))
        drop_from(l, (size_t)(l->durable_end - l->start));
    free(l->in_data);
    l->in_data = NULL;
    l->in_len = l->in_cap = 0;
    l->in_id.end_offset = -1;
}

int memlog_take_snapshot(memlog *l, int64_t end_offset, const uint8_t *data, size_t len)
{
    if (end_offset <= l->start || end_offset > memlog_end(l))
        return -1;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, data, len);
    free(l->snap_data);
    l->snap_data = copy;
    l->snap_len = len;
    l->snap.end_offset = end_offset;
    l->snap.epoch = memlog_at(l, end_offset - 1)->epoch;
    size_t k = (size_t)(end_offset - l->start);
    for (size_t i = 0; i < k; i++)
        free(l->ents[i].data);
    memmove(l->ents, l->ents + k, (l->n - k) * sizeof *l->ents);
    l->n -= k;
    l->start = end_offset;
    if (l->durable_end < l->start)
        l->durable_end = l->start;
    return 0;
}

static int push_entry(memlog *l, int32_t epoch, uint8_t type, const void *data, uint32_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        memlog_entry *e = realloc(l->ents, cap * sizeof *e);
        if (!e)
            return -1;
        l->ents = e;
        l->cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, data, len);
    l->ents[l->n++] = (memlog_entry){.epoch = epoch, .type = type, .len = len, .data = copy};
    return 0;
}

int memlog_append_raw(memlog *l, int32_t epoch, const void *data, uint32_t len)
{
    return push_entry(l, epoch, GR_RAFT_ENTRY_DATA, data, len);
}

/* ---- gr_raft_log_ops ---- */

static int64_t op_start(void *ctx) { return ((memlog *)ctx)->start; }
static int64_t op_end(void *ctx) { return memlog_end(ctx); }

static int32_t op_epoch_at(void *ctx, int64_t offset)
{
    const memlog_entry *e = memlog_at(ctx, offset);
    return e ? e->epoch : -1;
}

static void op_epoch_end_offset(void *ctx, int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    memlog *l = ctx;
    *out_epoch = -1;
    *out_end = -1;
    /* From the end: the last entry with an epoch <= the requested one. */
    for (size_t i = l->n; i-- > 0;) {
        if (l->ents[i].epoch <= epoch) {
            *out_epoch = l->ents[i].epoch;
            *out_end = l->start + (int64_t)i + 1;
            return;
        }
    }
}

static int op_read(void *ctx, int64_t from, size_t max_bytes, gr_raft_entry *out,
                   size_t max_entries, size_t *n)
{
    memlog *l = ctx;
    *n = 0;
    size_t bytes = 0;
    for (int64_t o = from; o < memlog_end(l) && *n < max_entries; o++) {
        const memlog_entry *e = memlog_at(l, o);
        if (!e)
            return -1;
        if (*n > 0 && bytes + e->len > max_bytes)
            break;
        bytes += e->len;
        out[(*n)++] = (gr_raft_entry){
            .offset = o, .epoch = e->epoch, .type = e->type, .len = e->len, .data = e->data};
    }
    return 0;
}

static int op_append(void *ctx, const gr_raft_entry *entries, size_t n)
{
    memlog *l = ctx;
    if (l->fail_appends)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].offset != memlog_end(l))
            return -1;
        if (push_entry(l, entries[i].epoch, entries[i].type, entries[i].data, entries[i].len))
            return -1;
        if (l->hooks.appended && l->hooks.appended(l->hooks.ctx, l, entries[i].offset))
            return -1;
    }
    return 0;
}

static int op_truncate(void *ctx, int64_t offset)
{
    memlog *l = ctx;
    if (offset < l->start || offset > memlog_end(l))
        return -1;
    if (l->hooks.truncating)
        l->hooks.truncating(l->hooks.ctx, l, offset);
    drop_from(l, (size_t)(offset - l->start));
    if (l->durable_end > offset)
        l->durable_end = offset;
    l->trunc_gen++;
    return 0;
}

static int op_snapshot_read(void *ctx, gr_raft_snapshot_id id, int64_t position, uint8_t *buf,
                            size_t max, size_t *len, int64_t *size)
{
    memlog *l = ctx;
    if (l->snap.end_offset < 0 || id.end_offset != l->snap.end_offset || id.epoch != l->snap.epoch)
        return 1;
    *size = (int64_t)l->snap_len;
    *len = 0;
    if (position < 0 || position > (int64_t)l->snap_len)
        return 0;
    size_t left = l->snap_len - (size_t)position;
    *len = left < max ? left : max;
    memcpy(buf, l->snap_data + position, *len);
    return 0;
}

static int op_snapshot_write(void *ctx, gr_raft_snapshot_id id, int64_t position,
                             const uint8_t *data, size_t len)
{
    memlog *l = ctx;
    if (position == 0 || id.end_offset != l->in_id.end_offset || id.epoch != l->in_id.epoch) {
        if (position != 0)
            return -1;
        l->in_id = id;
        l->in_len = 0;
    }
    if ((int64_t)l->in_len != position)
        return -1;
    if (l->in_len + len > l->in_cap) {
        size_t cap = (l->in_len + len) * 2;
        uint8_t *p = realloc(l->in_data, cap);
        if (!p)
            return -1;
        l->in_data = p;
        l->in_cap = cap;
    }
    memcpy(l->in_data + l->in_len, data, len);
    l->in_len += len;
    return 0;
}

static int op_snapshot_install(void *ctx, gr_raft_snapshot_id id)
{
    memlog *l = ctx;
    if (id.end_offset != l->in_id.end_offset || id.epoch != l->in_id.epoch)
        return -1;
    drop_from(l, 0);
    free(l->snap_data);
    l->snap_data = l->in_data;
    l->snap_len = l->in_len;
    l->snap = id;
    l->in_data = NULL;
    l->in_len = l->in_cap = 0;
    l->in_id.end_offset = -1;
    l->start = id.end_offset;
    l->durable_end = l->start;
    l->trunc_gen++;
    return 0;
}

void memlog_ops(memlog *l, gr_raft_log_ops *ops)
{
    *ops = (gr_raft_log_ops){
        .ctx = l,
        .start_offset = op_start,
        .end_offset = op_end,
        .epoch_at = op_epoch_at,
        .epoch_end_offset = op_epoch_end_offset,
        .read = op_read,
        .append = op_append,
        .truncate = op_truncate,
        .snapshot_read = op_snapshot_read,
        .snapshot_write = op_snapshot_write,
        .snapshot_install = op_snapshot_install,
    };
}
