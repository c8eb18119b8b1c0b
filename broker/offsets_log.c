/*
 * offsets_log.c - writes the group coordinator's records into a partition
 * of __consumer_offsets and reads them back (see offsets_log.h).
 *
 * Writing: byte for byte what Kafka 4.0's coordinator runtime writes for
 * the same input, so that Kafka's tools read the topic and a log moved
 * between the two means the same thing:
 *   - key   = int16 key version + the key message in that version:
 *             OffsetCommitKey v1 for an offset, GroupMetadataKey v2 for a
 *             group (the key version doubles as the record type);
 *   - value = int16 value version + the value message, or null (a
 *             tombstone). OffsetCommitValue v3, or v1 when the commit
 *             carries an explicit expire timestamp (v3 has no field for it,
 *             v1 no leader epoch: Kafka's choice, kept); GroupMetadataValue
 *             v3. The flexible v4 of both is read but not written, as Kafka
 *             4.0 does, so that older brokers can still read the topic;
 *   - one uncompressed batch of magic 2 per append, CreateTime, every
 *     record stamped now_ms with no headers, producer id and epoch -1 and
 *     base sequence 0 (the coordinator runtime's batch builder), offset
 *     deltas 0..n-1; the log assigns the offsets and stamps the leader
 *     epoch.
 *
 * Reading: the log is read batch by batch from its start and every record
 * below end_offset is decoded and handed to the visitor. What is on disk is
 * treated as hostile: a batch whose CRC does not match, that does not
 * decompress or whose records do not parse is skipped from the point of the
 * damage; a record without a key, with a key or value that does not decode
 * in its version, is skipped; each with a warning naming the offset. None
 * of them stops the load: the coordinator gets everything that is readable.
 * Records of other kinds (key versions other than 0, 1, 2: the consumer
 * protocol's records) are skipped quietly, as Kafka's classic coordinator
 * does. Control batches (transaction markers) and transactional batches are
 * skipped too: transactional offset commits do not exist here yet, and a
 * transactional record may only take effect when its marker commits it.
 *
 * Invariants: strings and bytes handed to the visitor point into this
 * module's read buffer (or a batch's decompressed records) and the per-
 * record arena, all of which stay unchanged until the visitor returns.
 */
#include "broker/offsets_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/logging.h"

#define SUB "offsets"

/* Key versions: the record type of a __consumer_offsets record. */
#define KEY_V_OFFSET_OLD 0
#define KEY_V_OFFSET 1
#define KEY_V_GROUP 2
/* Value versions written (see the top of the file). */
#define VALUE_V_OFFSET 3
#define VALUE_V_OFFSET_EXPIRE 1
#define VALUE_V_GROUP 3

/* Bytes asked of the log per read while loading (a read returns at least
 * one whole batch even when it is larger). */
#define LOAD_READ_BYTES (1u << 20)
/* Bound on the decompressed records of one batch, the same as the produce
 * path puts on a batch it validates: a batch that claims more is damaged. */
#define LOAD_MAX_UNCOMPRESSED (64u << 20)
/* Damaged records are warned about one by one up to this many per load;
 * the rest are counted in one summary line. */
#define LOAD_WARN_LIMIT 20

/* ---- encoding ---- */

/* Where one record's key and value sit in the scratch writer. */
typedef struct {
    size_t key_pos, key_len;
    size_t value_pos;
    int32_t value_len; /* -1: tombstone */
} rec_span;

static int16_t offset_value_version(const gr_offset_commit_value *v)
{
    return v->expire_timestamp >= 0 ? VALUE_V_OFFSET_EXPIRE : VALUE_V_OFFSET;
}

static int encode_key(const gr_offsets_record *rec, gr_writer *w)
{
    switch (rec->kind) {
    case GR_OFFSETS_REC_OFFSET: {
        gr_offset_commit_key k = {.group = rec->group, .topic = rec->topic,
                                  .partition = rec->partition};
        gr_write_i16(w, KEY_V_OFFSET);
        return gr_offset_commit_key_encode(&k, KEY_V_OFFSET, w);
    }
    case GR_OFFSETS_REC_GROUP: {
        gr_group_metadata_key k = {.group = rec->group};
        gr_write_i16(w, KEY_V_GROUP);
        return gr_group_metadata_key_encode(&k, KEY_V_GROUP, w);
    }
    }
    return GR_ERR_MALFORMED;
}

static int encode_value(const gr_offsets_record *rec, gr_writer *w)
{
    if (rec->kind == GR_OFFSETS_REC_OFFSET) {
        int16_t v = offset_value_version(&rec->offset);
        gr_write_i16(w, v);
        return gr_offset_commit_value_encode(&rec->offset, v, w);
    }
    gr_write_i16(w, VALUE_V_GROUP);
    return gr_group_metadata_value_encode(&rec->value, VALUE_V_GROUP, w);
}

/* Appends one record's key and value to w and says where they are. */
static int encode_record(const gr_offsets_record *rec, gr_writer *w, rec_span *span)
{
    span->key_pos = w->len;
    int rc = encode_key(rec, w);
    if (rc != GR_OK)
        return rc;
    span->key_len = w->len - span->key_pos;
    span->value_pos = w->len;
    span->value_len = -1;
    if (rec->tombstone)
        return GR_OK;
    rc = encode_value(rec, w);
    if (rc != GR_OK)
        return rc;
    if (w->len - span->value_pos > INT32_MAX)
        return GR_ERR_MALFORMED;
    span->value_len = (int32_t)(w->len - span->value_pos);
    return GR_OK;
}

int gr_offsets_encode_batch(const gr_offsets_record *recs, size_t n, int64_t now_ms, gr_writer *w)
{
    if (!recs || n == 0 || n > INT32_MAX)
        return GR_ERR_MALFORMED;
    rec_span *spans = calloc(n, sizeof *spans);
    gr_record_spec *specs = calloc(n, sizeof *specs);
    gr_writer scratch;
    gr_writer_init(&scratch, 128 * n < 65536 ? 128 * n : 65536);
    int rc = spans && specs ? GR_OK : GR_ERR_NOMEM;
    for (size_t i = 0; rc == GR_OK && i < n; i++)
        rc = encode_record(&recs[i], &scratch, &spans[i]);
    if (rc == GR_OK && !gr_writer_ok(&scratch))
        rc = scratch.err;
    if (rc == GR_OK) {
        /* Pointers only now: the scratch buffer moved while it grew. */
        for (size_t i = 0; i < n; i++) {
            specs[i].timestamp = now_ms;
            specs[i].offset_delta = (int32_t)i;
            specs[i].key = (gr_bytes){scratch.p + spans[i].key_pos, (int32_t)spans[i].key_len};
            specs[i].value = spans[i].value_len < 0
                                 ? GR_BYTES_NULL
                                 : (gr_bytes){scratch.p + spans[i].value_pos, spans[i].value_len};
        }
        gr_batch_spec spec = {
            .base_offset = 0,
            .partition_leader_epoch = -1, /* the log stamps the leader's */
            .attributes = 0,
            .codec = GR_CODEC_NONE,
            .producer_id = -1,
            .producer_epoch = -1,
            .base_sequence = 0,
        };
        rc = gr_batch_build(w, &spec, specs, (int32_t)n);
    }
    gr_writer_free(&scratch);
    free(specs);
    free(spans);
    return rc;
}

int16_t gr_offsets_append(gr_partition *p, const gr_offsets_record *recs, size_t n, int64_t now_ms,
                          int64_t *last_offset)
{
    if (!atomic_load(&p->leader))
        return GR_NOT_COORDINATOR;
    gr_writer w;
    gr_writer_init(&w, 256);
    int rc = gr_offsets_encode_batch(recs, n, now_ms, &w);
    if (rc != GR_OK) {
        /* Out of memory, or the caller handed over something that has no
         * encoding (a null group, a string over 32767 bytes). */
        GR_WARN(SUB, "cannot encode %zu records for %s-%d: %s", n, p->topic, p->index,
                gr_err_str(rc));
        gr_writer_free(&w);
        return GR_UNKNOWN_SERVER_ERROR;
    }
    int32_t max_bytes = atomic_load(&p->max_message_bytes);
    if (max_bytes > 0 && w.len > (size_t)max_bytes) {
        GR_DEBUG(SUB, "a batch of %zu bytes exceeds max.message.bytes %d of %s-%d", w.len,
                 max_bytes, p->topic, p->index);
        gr_writer_free(&w);
        return GR_RECORD_LIST_TOO_LARGE;
    }
    gr_log_append_result res;
    int lrc = gr_log_append(p->log, w.p, w.len, atomic_load(&p->leader_epoch), 0, 0, now_ms, &res);
    gr_writer_free(&w);
    switch (lrc) {
    case GR_LOG_OK:
        gr_partition_appended(p);
        if (last_offset)
            *last_offset = res.last_offset;
        return GR_NONE;
    case GR_LOG_ERR_TOO_LARGE:
        return GR_RECORD_LIST_TOO_LARGE;
    case GR_LOG_ERR_IO:
        return GR_KAFKA_STORAGE_ERROR;
    default:
        GR_WARN(SUB, "append to %s-%d failed: %s", p->topic, p->index, gr_log_err_str(lrc));
        return GR_UNKNOWN_SERVER_ERROR;
    }
}

int16_t gr_offsets_append_split(gr_partition *p, const gr_offsets_record *recs, size_t n,
                                int64_t now_ms, size_t *appended)
{
    size_t done = 0, k = n;
    int16_t err = GR_NONE;
    while (done < n && err == GR_NONE) {
        if (k > n - done)
            k = n - done;
        /* Halve until the batch fits; the size that fitted is where the
         * next batch starts, so the work stays near one encoding per
         * record rather than one per halving. */
        while ((err = gr_offsets_append(p, recs + done, k, now_ms, NULL)) ==
                   GR_RECORD_LIST_TOO_LARGE &&
               k > 1)
            k = (k + 1) / 2;
        if (err == GR_NONE)
            done += k;
    }
    *appended = done;
    return err;
}

/* ---- loading ---- */

typedef struct {
    gr_log *log;
    int64_t from, end; /* records in [from, end) are visited */
    gr_offsets_visit_fn visit;
    void *ctx;
    gr_arena arena; /* one record's decoded arrays */
    uint64_t damaged;
} loader;

/* Warns about damage: `part` says what is skipped ("the record at",
 * "the batch at", "the rest of the batch after"), why says how it is
 * damaged. */
static void damaged(loader *ld, const char *part, int64_t offset, const char *why)
{
    if (ld->damaged++ < LOAD_WARN_LIMIT)
        GR_WARN(SUB, "%s: skipping %s offset %" PRId64 ": %s", gr_log_name(ld->log), part, offset,
                why);
}

/* Decodes the key into out (kind, group, topic, partition). 1: a known
 * kind; 0: a record of another kind; -1: damaged (*why set). */
static int decode_key(const gr_record *rec, gr_offsets_record *out, gr_arena *a, const char **why)
{
    gr_reader r;
    int16_t version;
    if (rec->key.len < 0) {
        *why = "no key";
        return -1;
    }
    gr_reader_init(&r, rec->key.ptr, (size_t)rec->key.len);
    if (gr_read_i16(&r, &version) != GR_OK) {
        *why = "key shorter than its version";
        return -1;
    }
    switch (version) {
    case KEY_V_OFFSET_OLD:
    case KEY_V_OFFSET: {
        gr_offset_commit_key k;
        if (gr_offset_commit_key_decode(&k, &r, version, a) != GR_OK) {
            *why = "OffsetCommitKey does not decode";
            return -1;
        }
        out->kind = GR_OFFSETS_REC_OFFSET;
        out->group = k.group;
        out->topic = k.topic;
        out->partition = k.partition;
        return 1;
    }
    case KEY_V_GROUP: {
        gr_group_metadata_key k;
        if (gr_group_metadata_key_decode(&k, &r, version, a) != GR_OK) {
            *why = "GroupMetadataKey does not decode";
            return -1;
        }
        out->kind = GR_OFFSETS_REC_GROUP;
        out->group = k.group;
        return 1;
    }
    default:
        return 0;
    }
}

/* Decodes the value (or notes the tombstone). 0, or -1 with *why set. */
static int decode_value(const gr_record *rec, gr_offsets_record *out, gr_arena *a,
                        const char **why)
{
    gr_reader r;
    int16_t version;
    out->tombstone = rec->value.len < 0;
    if (out->tombstone)
        return 0;
    gr_reader_init(&r, rec->value.ptr, (size_t)rec->value.len);
    if (gr_read_i16(&r, &version) != GR_OK) {
        *why = "value shorter than its version";
        return -1;
    }
    int rc;
    if (out->kind == GR_OFFSETS_REC_OFFSET) {
        rc = gr_offset_commit_value_decode(&out->offset, &r, version, a);
        *why = rc == GR_ERR_VERSION ? "unknown OffsetCommitValue version"
                                    : "OffsetCommitValue does not decode";
    } else {
        rc = gr_group_metadata_value_decode(&out->value, &r, version, a);
        *why = rc == GR_ERR_VERSION ? "unknown GroupMetadataValue version"
                                    : "GroupMetadataValue does not decode";
    }
    return rc == GR_OK ? 0 : -1;
}

static void load_record(loader *ld, const gr_record *rec, int64_t offset)
{
    gr_offsets_record out;
    memset(&out, 0, sizeof out);
    gr_offset_commit_value_init(&out.offset);
    gr_group_metadata_value_init(&out.value);
    const char *why = NULL;
    int k = decode_key(rec, &out, &ld->arena, &why);
    if (k < 0) {
        damaged(ld, "the record at", offset, why);
        return;
    }
    if (k == 0) {
        GR_DEBUG(SUB, "%s: record at offset %" PRId64 " is of another kind; skipped",
                 gr_log_name(ld->log), offset);
        return;
    }
    if (decode_value(rec, &out, &ld->arena, &why) != 0)
        damaged(ld, "the record at", offset, why);
    else
        ld->visit(ld->ctx, &out, offset);
    gr_arena_free(&ld->arena);
}

/* One batch of exactly len bytes whose header parsed. */
static void load_batch(loader *ld, const uint8_t *p, size_t len)
{
    gr_batch_header h;
    gr_batch_result br = gr_batch_validate(p, len, false, 0, &h);
    if (br != GR_BATCH_OK) {
        /* The header parsed before, so its base offset is the batch's. */
        (void)gr_batch_parse_header(p, len, &h);
        damaged(ld, "the batch at", h.base_offset, gr_batch_result_str(br));
        return;
    }
    if (h.attributes & (GR_BATCH_ATTR_CONTROL | GR_BATCH_ATTR_TRANSACTIONAL)) {
        GR_DEBUG(SUB, "%s: skipping the %s batch at offset %" PRId64, gr_log_name(ld->log),
                 (h.attributes & GR_BATCH_ATTR_CONTROL) ? "control" : "transactional",
                 h.base_offset);
        return;
    }
    gr_record_iter it;
    br = gr_record_iter_init(&it, p, len, LOAD_MAX_UNCOMPRESSED);
    if (br != GR_BATCH_OK) {
        damaged(ld, "the batch at", h.base_offset, gr_batch_result_str(br));
        gr_record_iter_free(&it);
        return;
    }
    gr_record rec;
    int rc;
    int64_t last = -1; /* of the last record read, -1 before the first */
    while ((rc = gr_record_iter_next(&it, &rec, &br)) == 1) {
        int64_t offset = h.base_offset + rec.offset_delta;
        last = offset;
        if (offset >= ld->from && offset < ld->end)
            load_record(ld, &rec, offset);
    }
    if (rc < 0 && last < 0)
        damaged(ld, "the batch at", h.base_offset, gr_batch_result_str(br));
    else if (rc < 0)
        damaged(ld, "the rest of the batch after", last, gr_batch_result_str(br));
    gr_record_iter_free(&it);
}

static int pread_all(int fd, uint8_t *buf, size_t n, int64_t pos)
{
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, buf + done, n - done, (off_t)(pos + (int64_t)done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got == 0)
            errno = EIO; /* the file is shorter than the log said */
        if (got <= 0)
            return -1;
        done += (size_t)got;
    }
    return 0;
}

int gr_offsets_load(gr_log *log, int64_t end_offset, gr_offsets_visit_fn visit, void *ctx)
{
    loader ld = {.log = log, .from = gr_log_start_offset(log), .end = end_offset, .visit = visit,
                 .ctx = ctx};
    gr_arena_init(&ld.arena);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = GR_LOG_OK;
    int64_t next = ld.from;
    while (next < end_offset) {
        gr_log_read_result r;
        rc = gr_log_read(log, next, LOAD_READ_BYTES, end_offset, &r);
        if (rc != GR_LOG_OK)
            break;
        size_t len = r.length;
        if (len == 0) {
            gr_log_read_release(&r);
            break; /* nothing below end_offset from here on */
        }
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) {
                gr_log_read_release(&r);
                rc = GR_LOG_ERR_NOMEM;
                break;
            }
            buf = nb;
            cap = len;
        }
        int io = pread_all(r.fd, buf, len, r.position);
        gr_log_read_release(&r);
        if (io != 0) {
            GR_ERROR(SUB, "%s: cannot read the log at offset %" PRId64 ": %s", gr_log_name(log),
                     next, strerror(errno));
            rc = GR_LOG_ERR_IO;
            break;
        }
        size_t pos = 0;
        int64_t before = next;
        while (pos < len) {
            gr_batch_header h;
            /* The log handed out whole batches it walked by their headers,
             * so a header that does not parse means the file changed under
             * the read: nothing after it can be located. */
            if (gr_batch_parse_header(buf + pos, len - pos, &h) != GR_BATCH_OK) {
                GR_ERROR(SUB, "%s: unreadable batch header after offset %" PRId64,
                         gr_log_name(log), next);
                rc = GR_LOG_ERR_CORRUPT;
                goto out;
            }
            load_batch(&ld, buf + pos, gr_batch_size(&h));
            if (gr_batch_last_offset(&h) >= next)
                next = gr_batch_last_offset(&h) + 1;
            pos += gr_batch_size(&h);
        }
        if (next == before) {
            /* Batches that end below where this read started: the log is
             * not in offset order there. Stop rather than spin. */
            GR_ERROR(SUB, "%s: the log does not advance past offset %" PRId64, gr_log_name(log),
                     next);
            rc = GR_LOG_ERR_CORRUPT;
            break;
        }
    }
out:
    if (ld.damaged > LOAD_WARN_LIMIT)
        GR_WARN(SUB, "%s: %" PRIu64 " damaged records or batches skipped in all", gr_log_name(log),
                ld.damaged);
    gr_arena_free(&ld.arena);
    free(buf);
    return rc;
}
