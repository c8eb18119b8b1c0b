/* quorum.c - see quorum.h. */
#include "common/quorum.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/crc32c.h"
#include "common/errors.h"
#include "common/kclient.h"
#include "common/log.h"
#include "common/logging.h"
#include "common/metaprops.h"

#define SUB "quorum"
#define SNAP_MAGIC "GRSNAP01"
#define SNAP_HEADER 20 /* magic, crc32c, int64 length */
#define MAX_READ_ENTRIES 1024

/* KRaft's metadata topic id: Uuid(0, 1). */
static const gr_uuid metadata_topic_id = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

/* A request from a peer that the core has not answered yet. */
typedef struct pending {
    struct pending *next;
    uint64_t corr;
    gr_request *req;
} pending;

/* A request we sent to a peer. */
typedef struct {
    gr_quorum *q;
    int32_t to;
    gr_raft_msg_type type; /* of the request */
    uint64_t corr;
    /* What the core expects echoed but Kafka's responses do not carry. */
    bool pre_vote;
    int64_t fetch_offset;
} outgoing;

struct gr_quorum {
    gr_quorum_config cfg;
    struct event_base *base;
    struct event *timer;
    gr_raft *raft;
    gr_log *log;
    char dir[4096];     /* the metadata directory */
    char logdir[4200];  /* .../__cluster_metadata-0 */
    gr_kclient *peers[GR_RAFT_MAX_VOTERS];
    pending *pending;
    uint64_t next_corr;
    int64_t applied;      /* next offset to deliver */
    int32_t applied_epoch; /* epoch of the entry before applied */
    int64_t bytes_since_snapshot;
    int64_t segment_bytes;
    bool need_flush;
    bool in_effects;
    /* Buffers the log read op hands out (valid until the next call). */
    uint8_t *readbuf;
    size_t readcap;
    gr_raft_entry entries[MAX_READ_ENTRIES];
    /* The snapshot being fetched from the leader. */
    int snap_fd;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The metadata log or the quorum state failed us: Raft's promises cannot
 * be kept any more, so stop, as Kafka does. */
static void fatal(const char *what)
{
    GR_ERROR(SUB, "fatal: %s; stopping", what);
    exit(1);
}

/* ---- the log interface over the partition log ---- */

static int64_t op_start_offset(void *ctx) { return gr_log_start_offset(((gr_quorum *)ctx)->log); }
static int64_t op_end_offset(void *ctx) { return gr_log_end_offset(((gr_quorum *)ctx)->log); }

/* Reads whole batches starting at the one holding `from` into q->readbuf. */
static int read_batches(gr_quorum *q, int64_t from, size_t max_bytes, size_t *len)
{
    gr_log_read_result r;
    int rc = gr_log_read(q->log, from, max_bytes, INT64_MAX, &r);
    if (rc != GR_LOG_OK)
        return rc;
    if (r.length > q->readcap) {
        uint8_t *p = realloc(q->readbuf, r.length);
        if (!p) {
            gr_log_read_release(&r);
            return GR_LOG_ERR_NOMEM;
        }
        q->readbuf = p;
        q->readcap = r.length;
    }
    size_t want = r.length;
    ssize_t got = want ? pread(r.fd, q->readbuf, want, r.position) : 0;
    gr_log_read_release(&r);
    if (got != (ssize_t)want)
        return GR_LOG_ERR_IO;
    *len = want;
    return GR_LOG_OK;
}

/* Parses the entries of a run of batches (one entry per batch). */
static int parse_entries(const uint8_t *p, size_t len, gr_raft_entry *out, size_t max, size_t *n)
{
    size_t pos = 0, k = 0;
    while (pos < len && k < max) {
        gr_batch_header h;
        if (gr_batch_parse_header(p + pos, len - pos, &h) != GR_BATCH_OK)
            return -1;
        size_t size = gr_batch_size(&h);
        gr_record_iter it;
        gr_record rec;
        gr_batch_result err;
        if (gr_record_iter_init(&it, p + pos, size, 0) != GR_BATCH_OK ||
            gr_record_iter_next(&it, &rec, &err) != 1 || rec.value.len < 0 || it.owned) {
            gr_record_iter_free(&it);
            return -1;
        }
        out[k] = (gr_raft_entry){
            .offset = h.base_offset,
            .epoch = h.partition_leader_epoch,
            .type = (h.attributes & GR_BATCH_ATTR_CONTROL) ? GR_RAFT_ENTRY_LEADER_CHANGE
                                                           : GR_RAFT_ENTRY_DATA,
            .len = (uint32_t)rec.value.len,
            .data = rec.value.ptr,
        };
        gr_record_iter_free(&it);
        k++;
        pos += size;
    }
    *n = k;
    return 0;
}

static int32_t op_epoch_at(void *ctx, int64_t offset)
{
    gr_quorum *q = ctx;
    if (offset < gr_log_start_offset(q->log) || offset >= gr_log_end_offset(q->log))
        return -1;
    size_t len, n;
    if (read_batches(q, offset, 1, &len) != GR_LOG_OK ||
        parse_entries(q->readbuf, len, q->entries, 1, &n) != 0 || n != 1 ||
        q->entries[0].offset != offset)
        return -1;
    return q->entries[0].epoch;
}

static void op_epoch_end_offset(void *ctx, int32_t epoch, int32_t *out_epoch, int64_t *out_end)
{
    gr_log_epoch_end_offset(((gr_quorum *)ctx)->log, epoch, out_epoch, out_end);
}

static int op_read(void *ctx, int64_t from, size_t max_bytes, gr_raft_entry *out,
                   size_t max_entries, size_t *n)
{
    gr_quorum *q = ctx;
    size_t len;
    int rc = read_batches(q, from, max_bytes, &len);
    if (rc != GR_LOG_OK) {
        GR_ERROR(SUB, "reading the metadata log at %lld: %s", (long long)from, gr_log_err_str(rc));
        return -1;
    }
    if (parse_entries(q->readbuf, len, out, max_entries, n) != 0 || *n == 0) {
        GR_ERROR(SUB, "the metadata log at %lld holds %zu bytes that are not entries",
                 (long long)from, len);
        return -1;
    }
    return 0;
}

/* One batch per entry: base offset and leader epoch from the entry. */
static int encode_entry(gr_writer *w, const gr_raft_entry *e, int64_t ts)
{
    gr_record_spec rec = {.timestamp = ts, .offset_delta = 0, .key = GR_BYTES_NULL,
                          .value = {e->data, (int32_t)e->len}};
    gr_batch_spec spec = {.base_offset = e->offset, .partition_leader_epoch = e->epoch,
                          .attributes = e->type == GR_RAFT_ENTRY_LEADER_CHANGE
                                            ? GR_BATCH_ATTR_CONTROL
                                            : 0,
                          .codec = GR_CODEC_NONE, .producer_id = -1, .producer_epoch = -1,
                          .base_sequence = -1};
    return gr_batch_build(w, &spec, &rec, 1);
}

/* The entries as record batches, copied into arena memory (a Fetch response). */
static int encode_entries(gr_arena *a, const gr_raft_entry *entries, size_t n, gr_bytes *out)
{
    gr_writer w;
    gr_writer_init(&w, 256 * n);
    int64_t ts = wall_ms();
    for (size_t i = 0; i < n; i++)
        encode_entry(&w, &entries[i], ts);
    uint8_t *copy = gr_writer_ok(&w) ? gr_arena_alloc(a, w.len) : NULL;
    if (copy) {
        memcpy(copy, w.p, w.len);
        *out = (gr_bytes){copy, (int32_t)w.len};
    }
    gr_writer_free(&w);
    return copy ? 0 : -1;
}

static int op_append(void *ctx, const gr_raft_entry *entries, size_t n)
{
    gr_quorum *q = ctx;
    gr_writer w;
    gr_writer_init(&w, 256 * n);
    int64_t ts = wall_ms();
    for (size_t i = 0; i < n; i++)
        if (encode_entry(&w, &entries[i], ts) != GR_OK) {
            gr_writer_free(&w);
            return -1;
        }
    gr_log_append_result res;
    int rc = gr_log_append_replica(q->log, w.p, w.len, ts, &res);
    gr_writer_free(&w);
    if (rc != GR_LOG_OK) {
        GR_ERROR(SUB, "append to the metadata log failed: %s", gr_log_err_str(rc));
        return -1;
    }
    q->need_flush = true;
    return 0;
}

static int op_truncate(void *ctx, int64_t offset)
{
    gr_quorum *q = ctx;
    if (gr_log_truncate_to(q->log, offset, wall_ms()) != GR_LOG_OK ||
        gr_log_flush(q->log, wall_ms()) != GR_LOG_OK)
        return -1;
    return 0;
}

/* ---- snapshots ---- */

static void snapshot_path(const gr_quorum *q, gr_raft_snapshot_id id, const char *suffix,
                          char *buf, size_t len)
{
    snprintf(buf, len, "%s/%020" PRId64 "-%010" PRId32 ".checkpoint%s", q->logdir, id.end_offset,
             id.epoch, suffix);
}

/* The newest complete snapshot in the log directory (end_offset -1: none). */
static gr_raft_snapshot_id latest_snapshot(const gr_quorum *q)
{
    gr_raft_snapshot_id best = {-1, -1};
    DIR *d = opendir(q->logdir);
    if (!d)
        return best;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long end;
        int epoch, used = 0;
        if (sscanf(e->d_name, "%20lld-%10d.checkpoint%n", &end, &epoch, &used) == 2 &&
            e->d_name[used] == 0 && end > best.end_offset)
            best = (gr_raft_snapshot_id){end, epoch};
    }
    closedir(d);
    return best;
}

/* Reads and checks a snapshot file; *data (malloc'd) holds the state. */
static int snapshot_load_file(const gr_quorum *q, gr_raft_snapshot_id id, uint8_t **data,
                              size_t *len)
{
    char path[4400];
    snapshot_path(q, id, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    uint8_t hdr[SNAP_HEADER];
    struct stat st;
    int rc = -1;
    *data = NULL;
    if (fstat(fd, &st) == 0 && pread(fd, hdr, SNAP_HEADER, 0) == SNAP_HEADER &&
        memcmp(hdr, SNAP_MAGIC, 8) == 0) {
        gr_reader r;
        gr_reader_init(&r, hdr + 8, 12);
        uint32_t crc;
        int64_t n;
        gr_read_u32(&r, &crc);
        gr_read_i64(&r, &n);
        if (n >= 0 && n == st.st_size - SNAP_HEADER && (*data = malloc((size_t)n + 1)) &&
            pread(fd, *data, (size_t)n, SNAP_HEADER) == n && gr_crc32c(0, *data, (size_t)n) == crc) {
            *len = (size_t)n;
            rc = 0;
        }
    }
    close(fd);
    if (rc != 0) {
        free(*data);
        *data = NULL;
        GR_ERROR(SUB, "snapshot %s is damaged", path);
    }
    return rc;
}

/* Removes snapshots older than keep, and with `partials` the leftovers of
 * downloads (never while one may be under way). */
static void remove_old_snapshots(const gr_quorum *q, gr_raft_snapshot_id keep, bool partials)
{
    DIR *d = opendir(q->logdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long end;
        int epoch, used = 0;
        if (sscanf(e->d_name, "%20lld-%10d.checkpoint%n", &end, &epoch, &used) != 2)
            continue;
        bool partial = partials && strcmp(e->d_name + used, ".part") == 0;
        if ((e->d_name[used] == 0 && end < keep.end_offset) || partial)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static int op_snapshot_read(void *ctx, gr_raft_snapshot_id id, int64_t position, uint8_t *buf,
                            size_t max, size_t *len, int64_t *size)
{
    gr_quorum *q = ctx;
    char path[4400];
    snapshot_path(q, id, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    struct stat st;
    int rc = 1;
    if (fstat(fd, &st) == 0 && position >= 0 && position <= st.st_size) {
        ssize_t got = pread(fd, buf, max, position);
        if (got >= 0) {
            *len = (size_t)got;
            *size = st.st_size;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

static int op_snapshot_write(void *ctx, gr_raft_snapshot_id id, int64_t position,
                             const uint8_t *data, size_t len)
{
    gr_quorum *q = ctx;
    char path[4400];
    snapshot_path(q, id, ".part", path, sizeof path);
    if (position == 0) {
        if (q->snap_fd >= 0)
            close(q->snap_fd);
        q->snap_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    }
    if (q->snap_fd < 0)
        return -1;
    return pwrite(q->snap_fd, data, len, position) == (ssize_t)len ? 0 : -1;
}

static int op_snapshot_install(void *ctx, gr_raft_snapshot_id id)
{
    gr_quorum *q = ctx;
    char part[4400], final[4400];
    snapshot_path(q, id, ".part", part, sizeof part);
    snapshot_path(q, id, "", final, sizeof final);
    if (q->snap_fd < 0 || fsync(q->snap_fd) != 0)
        return -1;
    close(q->snap_fd);
    q->snap_fd = -1;
    uint8_t *data;
    size_t len;
    if (rename(part, final) != 0 || snapshot_load_file(q, id, &data, &len) != 0)
        return -1;
    free(data);
    if (gr_log_reset(q->log, id.end_offset, wall_ms()) != GR_LOG_OK)
        return -1;
    remove_old_snapshots(q, id, true);
    GR_INFO(SUB, "node %d installed snapshot %" PRId64 "-%d from the leader", q->cfg.node_id,
            id.end_offset, id.epoch);
    return 0;
}

/* Loads snapshot id (or the empty state) into the state machine. */
static int load_state(gr_quorum *q, gr_raft_snapshot_id id)
{
    if (id.end_offset < 0) {
        q->applied = gr_log_start_offset(q->log);
        q->applied_epoch = 0;
        return q->cfg.sm.snapshot_load(q->cfg.sm.ctx, NULL, 0);
    }
    uint8_t *data;
    size_t len;
    if (snapshot_load_file(q, id, &data, &len) != 0)
        return -1;
    int rc = q->cfg.sm.snapshot_load(q->cfg.sm.ctx, data, len);
    free(data);
    q->applied = id.end_offset;
    q->applied_epoch = id.epoch;
    return rc;
}

/* Writes a snapshot of the state as of q->applied, then lets Raft and the
 * log drop the prefix it covers. */
static void take_snapshot(gr_quorum *q)
{
    gr_raft_snapshot_id id = {q->applied, q->applied_epoch};
    gr_writer body;
    gr_writer_init(&body, 4096);
    if (q->cfg.sm.snapshot_write(q->cfg.sm.ctx, &body) != 0 || !gr_writer_ok(&body)) {
        gr_writer_free(&body);
        GR_WARN(SUB, "cannot write a snapshot of the metadata state");
        return;
    }
    gr_writer w;
    gr_writer_init(&w, body.len + SNAP_HEADER);
    gr_write_raw(&w, SNAP_MAGIC, 8);
    gr_write_u32(&w, gr_crc32c(0, body.p, body.len));
    gr_write_i64(&w, (int64_t)body.len);
    gr_write_raw(&w, body.p, body.len);
    gr_writer_free(&body);
    char path[4400];
    snapshot_path(q, id, "", path, sizeof path);
    int rc = gr_writer_ok(&w) ? gr_write_file_atomic(path, w.p, w.len) : -1;
    gr_writer_free(&w);
    if (rc != 0) {
        GR_WARN(SUB, "cannot write snapshot %s: %s", path, strerror(errno));
        return;
    }
    q->bytes_since_snapshot = 0;
    gr_raft_snapshot_taken(q->raft, mono_ms(), id);
    if (gr_log_delete_records(q->log, id.end_offset, wall_ms()) != GR_LOG_OK)
        GR_WARN(SUB, "cannot delete the metadata log below %" PRId64, id.end_offset);
    remove_old_snapshots(q, id, false);
    GR_INFO(SUB, "node %d wrote snapshot %" PRId64 "-%d", q->cfg.node_id, id.end_offset, id.epoch);
}

/* ---- quorum state ---- */

static int persist_state(gr_quorum *q, const gr_raft_quorum_state *s)
{
    char path[4200], body[256];
    snprintf(path, sizeof path, "%s/quorum-state", q->dir);
    int n = snprintf(body, sizeof body,
                     "{\"leaderId\":%d,\"leaderEpoch\":%d,\"votedId\":%d,\"data_version\":0}\n",
                     s->leader_id, s->epoch, s->voted_for);
    return gr_write_file_atomic(path, body, (size_t)n);
}

static int json_int(const char *body, const char *key, int *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    return p && sscanf(p + strlen(pat), "%d", out) == 1 ? 0 : -1;
}

static int load_state_file(gr_quorum *q, gr_raft_quorum_state *s)
{
    *s = (gr_raft_quorum_state){0, GR_RAFT_NO_NODE, GR_RAFT_NO_NODE};
    char path[4200], body[512];
    snprintf(path, sizeof path, "%s/quorum-state", q->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    size_t n = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    body[n] = 0;
    if (json_int(body, "leaderEpoch", &s->epoch) || json_int(body, "leaderId", &s->leader_id) ||
        json_int(body, "votedId", &s->voted_for)) {
        GR_ERROR(SUB, "%s is damaged", path);
        return -1;
    }
    return 0;
}

/* ---- the wire ---- */

static int16_t kafka_error(int16_t e)
{
    switch (e) {
    case GR_RAFT_E_NONE: return GR_NONE;
    case GR_RAFT_E_FENCED_LEADER_EPOCH: return GR_FENCED_LEADER_EPOCH;
    case GR_RAFT_E_UNKNOWN_LEADER_EPOCH: return GR_UNKNOWN_LEADER_EPOCH;
    case GR_RAFT_E_NOT_LEADER: return GR_NOT_LEADER_OR_FOLLOWER;
    case GR_RAFT_E_SNAPSHOT_NOT_FOUND: return GR_SNAPSHOT_NOT_FOUND;
    case GR_RAFT_E_POSITION_OUT_OF_RANGE: return GR_POSITION_OUT_OF_RANGE;
    case GR_RAFT_E_INCONSISTENT_VOTER: return GR_INCONSISTENT_VOTER_SET;
    default: return GR_UNKNOWN_SERVER_ERROR;
    }
}

static int16_t raft_error(int16_t e)
{
    switch (e) {
    case GR_NONE: return GR_RAFT_E_NONE;
    case GR_FENCED_LEADER_EPOCH: return GR_RAFT_E_FENCED_LEADER_EPOCH;
    case GR_UNKNOWN_LEADER_EPOCH: return GR_RAFT_E_UNKNOWN_LEADER_EPOCH;
    case GR_NOT_LEADER_OR_FOLLOWER: return GR_RAFT_E_NOT_LEADER;
    case GR_SNAPSHOT_NOT_FOUND: return GR_RAFT_E_SNAPSHOT_NOT_FOUND;
    case GR_POSITION_OUT_OF_RANGE: return GR_RAFT_E_POSITION_OUT_OF_RANGE;
    case GR_INCONSISTENT_VOTER_SET: return GR_RAFT_E_INCONSISTENT_VOTER;
    default: return -1;
    }
}

static void run_effects(gr_quorum *q);
static void arm_timer(gr_quorum *q);

/* Feeds a message into the core and carries out what follows. */
static void deliver(gr_quorum *q, const gr_raft_msg *m)
{
    int rc = gr_raft_receive(q->raft, mono_ms(), m);
    if (rc == GR_RAFT_ERR_IO)
        fatal("metadata log I/O error");
    run_effects(q);
}

static const gr_str metadata_topic_name = {GR_METADATA_TOPIC, sizeof GR_METADATA_TOPIC - 1};

/*
 * Every KRaft message names one topic (the metadata topic) holding one
 * partition (0). KRAFT_MSG declares m, t and p, the message, its topic and
 * its partition, of the generated types T, T##TT and T##PT, allocated from
 * arena a with their defaults, linked and named; m is NULL when out of
 * memory. The generated names differ per message, hence the arguments.
 */
#define KRAFT_MSG(a, T, TT, PT, m, t, p, topics, parts, name)                                      \
    T *m = gr_arena_alloc(a, sizeof *m);                                                           \
    T##TT *t = gr_arena_alloc(a, sizeof *t);                                                       \
    T##PT *p = gr_arena_alloc(a, sizeof *p);                                                       \
    if (m && t && p) {                                                                             \
        T##_init(m);                                                                               \
        T##TT##_init(t);                                                                           \
        T##PT##_init(p);                                                                           \
        m->topics = t;                                                                             \
        m->topics##_count = 1;                                                                     \
        t->parts = p;                                                                              \
        t->parts##_count = 1;                                                                      \
        t->name = metadata_topic_name;                                                             \
    } else {                                                                                       \
        m = NULL;                                                                                  \
    }

/* Responses from peers, decoded and turned into core messages. */
static void on_response(void *arg, int err, gr_reader *body)
{
    outgoing *o = arg;
    gr_quorum *q = o->q;
    if (err == GR_KCLIENT_ERR_CLOSED) { /* the quorum is closing */
        free(o);
        return;
    }
    if (err != 0) {
        /* Lost: voters retry on the core's timers. An observer is told at
         * once, so that it asks another voter for the leader instead of
         * waiting on one that is down. */
        if (o->type == GR_RAFT_MSG_FETCH_REQ && gr_raft_get_role(q->raft) == GR_RAFT_OBSERVER) {
            gr_raft_msg m = {.type = GR_RAFT_MSG_FETCH_RESP, .from = o->to, .corr = o->corr,
                             .error = GR_RAFT_E_NOT_LEADER, .epoch = gr_raft_epoch(q->raft),
                             .leader_id = GR_RAFT_NO_NODE, .snapshot_id = {-1, -1},
                             .diverging_epoch = -1, .diverging_end_offset = -1,
                             .fetch_offset = o->fetch_offset};
            free(o);
            deliver(q, &m);
            return;
        }
        free(o);
        return;
    }
    gr_arena a;
    gr_arena_init(&a);
    gr_raft_msg m = {.from = o->to, .corr = o->corr, .leader_id = GR_RAFT_NO_NODE,
                     .snapshot_id = {-1, -1}, .diverging_epoch = -1, .diverging_end_offset = -1};
    int16_t kerr = GR_NONE;
    bool ok = false;
    gr_kclient *c = q->peers[0];
    for (size_t i = 0; i < q->cfg.n_voters; i++)
        if (q->cfg.voters[i].id == o->to)
            c = q->peers[i];
    switch (o->type) {
    case GR_RAFT_MSG_VOTE_REQ: {
        gr_vote_response r;
        if (gr_vote_response_decode(&r, body, gr_kclient_version(c, GR_API_VOTE, 2), &a) != GR_OK)
            break;
        m.type = GR_RAFT_MSG_VOTE_RESP;
        kerr = r.error_code;
        if (r.topics_count == 1 && r.topics[0].partitions_count == 1) {
            gr_vote_response_partition_data *p = &r.topics[0].partitions[0];
            kerr = kerr ? kerr : p->error_code;
            m.epoch = p->leader_epoch;
            m.leader_id = p->leader_id;
            m.granted = p->vote_granted;
            m.pre_vote = o->pre_vote;
            ok = true;
        }
        break;
    }
    case GR_RAFT_MSG_BEGIN_EPOCH_REQ: {
        gr_begin_quorum_epoch_response r;
        if (gr_begin_quorum_epoch_response_decode(
                &r, body, gr_kclient_version(c, GR_API_BEGIN_QUORUM_EPOCH, 1), &a) != GR_OK)
            break;
        m.type = GR_RAFT_MSG_BEGIN_EPOCH_RESP;
        kerr = r.error_code;
        if (r.topics_count == 1 && r.topics[0].partitions_count == 1) {
            gr_begin_quorum_epoch_response_partition_data *p = &r.topics[0].partitions[0];
            kerr = kerr ? kerr : p->error_code;
            m.epoch = p->leader_epoch;
            m.leader_id = p->leader_id;
            ok = true;
        }
        break;
    }
    case GR_RAFT_MSG_END_EPOCH_REQ: {
        gr_end_quorum_epoch_response r;
        if (gr_end_quorum_epoch_response_decode(
                &r, body, gr_kclient_version(c, GR_API_END_QUORUM_EPOCH, 1), &a) != GR_OK)
            break;
        m.type = GR_RAFT_MSG_END_EPOCH_RESP;
        kerr = r.error_code;
        if (r.topics_count == 1 && r.topics[0].partitions_count == 1) {
            gr_end_quorum_epoch_response_partition_data *p = &r.topics[0].partitions[0];
            kerr = kerr ? kerr : p->error_code;
            m.epoch = p->leader_epoch;
            m.leader_id = p->leader_id;
            ok = true;
        }
        break;
    }
    case GR_RAFT_MSG_FETCH_REQ: {
        gr_fetch_response r;
        if (gr_fetch_response_decode(&r, body, gr_kclient_version(c, GR_API_FETCH, 16), &a) !=
            GR_OK)
            break;
        m.type = GR_RAFT_MSG_FETCH_RESP;
        kerr = r.error_code;
        if (r.responses_count == 1 && r.responses[0].partitions_count == 1) {
            gr_fetch_response_partition_data *p = &r.responses[0].partitions[0];
            kerr = kerr ? kerr : p->error_code;
            m.epoch = p->current_leader.leader_epoch;
            m.leader_id = p->current_leader.leader_id;
            m.high_watermark = p->high_watermark;
            m.fetch_offset = o->fetch_offset;
            m.diverging_epoch = p->diverging_epoch.epoch;
            m.diverging_end_offset = p->diverging_epoch.end_offset;
            m.snapshot_id = (gr_raft_snapshot_id){p->snapshot_id.end_offset, p->snapshot_id.epoch};
            size_t n = 0;
            if (p->records.len > 0) {
                gr_raft_entry *e = gr_arena_calloc(&a, MAX_READ_ENTRIES, sizeof *e);
                if (!e || parse_entries(p->records.ptr, (size_t)p->records.len, e,
                                        MAX_READ_ENTRIES, &n) != 0)
                    break;
                m.entries = e;
                m.n_entries = n;
            }
            ok = true;
        }
        break;
    }
    case GR_RAFT_MSG_FETCH_SNAPSHOT_REQ: {
        gr_fetch_snapshot_response r;
        if (gr_fetch_snapshot_response_decode(
                &r, body, gr_kclient_version(c, GR_API_FETCH_SNAPSHOT, 1), &a) != GR_OK)
            break;
        m.type = GR_RAFT_MSG_FETCH_SNAPSHOT_RESP;
        kerr = r.error_code;
        if (r.topics_count == 1 && r.topics[0].partitions_count == 1) {
            gr_fetch_snapshot_response_partition_snapshot *p = &r.topics[0].partitions[0];
            kerr = kerr ? kerr : p->error_code;
            m.epoch = p->current_leader.leader_epoch;
            m.leader_id = p->current_leader.leader_id;
            m.snapshot_id = (gr_raft_snapshot_id){p->snapshot_id.end_offset, p->snapshot_id.epoch};
            m.position = p->position;
            m.size = p->size;
            m.bytes = (uint8_t *)p->unaligned_records.ptr;
            m.n_bytes = p->unaligned_records.len > 0 ? (size_t)p->unaligned_records.len : 0;
            ok = true;
        }
        break;
    }
    default:
        break;
    }
    free(o);
    int16_t re = raft_error(kerr);
    GR_DEBUG(SUB, "node %d: %s from node %d: error %s, epoch %d, leader %d, %zu entries, hw %lld, "
             "diverging %d/%lld, snapshot %lld",
             q->cfg.node_id, gr_raft_msg_type_name(m.type), m.from, gr_kafka_error_name(kerr),
             m.epoch, m.leader_id, m.n_entries, (long long)m.high_watermark, m.diverging_epoch,
             (long long)m.diverging_end_offset, (long long)m.snapshot_id.end_offset);
    if (ok && re >= 0) {
        m.error = re;
        deliver(q, &m);
    } else if (ok) {
        GR_DEBUG(SUB, "node %d: %s from node %d failed: %s", q->cfg.node_id,
                 gr_raft_msg_type_name(m.type), m.from, gr_kafka_error_name(kerr));
    } else {
        GR_WARN(SUB, "node %d: malformed response from node %d", q->cfg.node_id, m.from);
    }
    gr_arena_free(&a);
}

/* Sends a request message of the core to voter `to`. */
static void send_request(gr_quorum *q, int32_t to, const gr_raft_msg *m)
{
    size_t vi = q->cfg.n_voters;
    for (size_t i = 0; i < q->cfg.n_voters; i++)
        if (q->cfg.voters[i].id == to)
            vi = i;
    if (vi == q->cfg.n_voters)
        return;
    gr_kclient *c = q->peers[vi];
    gr_arena a;
    gr_arena_init(&a);
    int16_t key = -1, version = -1;
    void *msg = NULL;
    gr_str cluster = gr_str_from(q->cfg.cluster_id);
    int timeout = q->cfg.raft.request_timeout_ms;

    switch (m->type) {
    case GR_RAFT_MSG_VOTE_REQ: {
        KRAFT_MSG(&a, gr_vote_request, _topic_data, _partition_data, r, t, p, topics, partitions,
                  topic_name);
        if (!r)
            break;
        r->cluster_id = cluster;
        r->voter_id = to;
        p->candidate_epoch = m->epoch;
        p->candidate_id = q->cfg.node_id;
        p->last_offset_epoch = m->last_epoch;
        p->last_offset = m->last_offset;
        p->pre_vote = m->pre_vote;
        key = GR_API_VOTE;
        version = 2;
        msg = r;
        break;
    }
    case GR_RAFT_MSG_BEGIN_EPOCH_REQ: {
        KRAFT_MSG(&a, gr_begin_quorum_epoch_request, _topic_data, _partition_data, r, t, p, topics,
                  partitions, topic_name);
        if (!r)
            break;
        r->cluster_id = cluster;
        r->voter_id = to;
        p->leader_id = q->cfg.node_id;
        p->leader_epoch = m->epoch;
        key = GR_API_BEGIN_QUORUM_EPOCH;
        version = 1;
        msg = r;
        break;
    }
    case GR_RAFT_MSG_END_EPOCH_REQ: {
        KRAFT_MSG(&a, gr_end_quorum_epoch_request, _topic_data, _partition_data, r, t, p, topics,
                  partitions, topic_name);
        if (!r)
            break;
        r->cluster_id = cluster;
        p->leader_id = q->cfg.node_id;
        p->leader_epoch = m->epoch;
        key = GR_API_END_QUORUM_EPOCH;
        version = 1;
        msg = r;
        break;
    }
    case GR_RAFT_MSG_FETCH_REQ: {
        KRAFT_MSG(&a, gr_fetch_request, _fetch_topic, _fetch_partition, r, t, p, topics,
                  partitions, topic);
        if (!r)
            break;
        r->cluster_id = cluster;
        r->replica_state.replica_id = q->cfg.node_id;
        r->replica_id = q->cfg.node_id;
        r->max_wait_ms = q->cfg.raft.fetch_max_wait_ms;
        r->min_bytes = 1;
        r->max_bytes = (int32_t)q->cfg.raft.fetch_max_bytes;
        t->topic_id = metadata_topic_id;
        p->current_leader_epoch = m->epoch;
        p->fetch_offset = m->fetch_offset;
        p->last_fetched_epoch = m->last_fetched_epoch;
        p->log_start_offset = -1;
        p->partition_max_bytes = (int32_t)q->cfg.raft.fetch_max_bytes;
        key = GR_API_FETCH;
        version = 16;
        msg = r;
        timeout += q->cfg.raft.fetch_max_wait_ms;
        break;
    }
    case GR_RAFT_MSG_FETCH_SNAPSHOT_REQ: {
        KRAFT_MSG(&a, gr_fetch_snapshot_request, _topic_snapshot, _partition_snapshot, r, t, p,
                  topics, partitions, name);
        if (!r)
            break;
        r->cluster_id = cluster;
        r->replica_id = q->cfg.node_id;
        r->max_bytes = (int32_t)q->cfg.raft.snapshot_chunk_bytes;
        p->current_leader_epoch = m->epoch;
        p->snapshot_id.end_offset = m->snapshot_id.end_offset;
        p->snapshot_id.epoch = m->snapshot_id.epoch;
        p->position = m->position;
        key = GR_API_FETCH_SNAPSHOT;
        version = 1;
        msg = r;
        break;
    }
    default:
        break;
    }
    if (msg) {
        int16_t v = gr_kclient_connected(c) ? gr_kclient_version(c, key, version) : version;
        outgoing *o = malloc(sizeof *o);
        if (o && v >= 0) {
            *o = (outgoing){q, to, m->type, m->corr, m->pre_vote, m->fetch_offset};
            if (gr_kclient_send(c, key, v, msg, timeout, on_response, o) != 0)
                free(o);
        } else {
            free(o);
        }
    }
    gr_arena_free(&a);
}

/* Answers a peer's pending request with the core's response message;
 * kerr, when not GR_NONE, overrides the message's error (requests refused
 * before they reach the core). */
static void send_response(gr_quorum *q, const gr_raft_msg *m, int16_t kerr)
{
    pending **pp = &q->pending;
    while (*pp && (*pp)->corr != m->corr)
        pp = &(*pp)->next;
    pending *p = *pp;
    GR_DEBUG(SUB, "node %d: %s to node %d%s", q->cfg.node_id, gr_raft_msg_type_name(m->type), m->from,
             p ? "" : " (requester gone)");
    if (!p)
        return; /* the requester went away */
    *pp = p->next;
    gr_request *req = p->req;
    free(p);
    gr_arena *a = &req->arena;
    int16_t err = kerr != GR_NONE ? kerr : kafka_error(m->error);
    int rc = GR_ERR_NOMEM;
    switch (m->type) {
    case GR_RAFT_MSG_VOTE_RESP: {
        KRAFT_MSG(a, gr_vote_response, _topic_data, _partition_data, r, t, p, topics, partitions,
                  topic_name);
        if (!r)
            break;
        p->error_code = err;
        p->leader_id = m->leader_id;
        p->leader_epoch = m->epoch;
        p->vote_granted = m->granted;
        rc = gr_vote_response_encode(r, req->api_version, &req->out);
        break;
    }
    case GR_RAFT_MSG_BEGIN_EPOCH_RESP: {
        KRAFT_MSG(a, gr_begin_quorum_epoch_response, _topic_data, _partition_data, r, t, p, topics,
                  partitions, topic_name);
        if (!r)
            break;
        p->error_code = err;
        p->leader_id = m->leader_id;
        p->leader_epoch = m->epoch;
        rc = gr_begin_quorum_epoch_response_encode(r, req->api_version, &req->out);
        break;
    }
    case GR_RAFT_MSG_END_EPOCH_RESP: {
        KRAFT_MSG(a, gr_end_quorum_epoch_response, _topic_data, _partition_data, r, t, p, topics,
                  partitions, topic_name);
        if (!r)
            break;
        p->error_code = err;
        p->leader_id = m->leader_id;
        p->leader_epoch = m->epoch;
        rc = gr_end_quorum_epoch_response_encode(r, req->api_version, &req->out);
        break;
    }
    case GR_RAFT_MSG_FETCH_RESP: {
        KRAFT_MSG(a, gr_fetch_response, _fetchable_topic_response, _partition_data, r, t, p,
                  responses, partitions, topic);
        if (!r)
            break;
        t->topic_id = metadata_topic_id;
        p->error_code = err;
        p->high_watermark = m->high_watermark;
        p->log_start_offset = gr_log_start_offset(q->log);
        p->current_leader.leader_id = m->leader_id;
        p->current_leader.leader_epoch = m->epoch;
        p->diverging_epoch.epoch = m->diverging_epoch;
        p->diverging_epoch.end_offset = m->diverging_end_offset;
        p->snapshot_id.end_offset = m->snapshot_id.end_offset;
        p->snapshot_id.epoch = m->snapshot_id.epoch;
        p->records = GR_BYTES_NULL;
        if (m->n_entries > 0 && encode_entries(a, m->entries, m->n_entries, &p->records) != 0)
            break;
        rc = gr_fetch_response_encode(r, req->api_version, &req->out);
        break;
    }
    case GR_RAFT_MSG_FETCH_SNAPSHOT_RESP: {
        KRAFT_MSG(a, gr_fetch_snapshot_response, _topic_snapshot, _partition_snapshot, r, t, p,
                  topics, partitions, name);
        if (!r)
            break;
        p->error_code = err;
        p->snapshot_id.end_offset = m->snapshot_id.end_offset;
        p->snapshot_id.epoch = m->snapshot_id.epoch;
        p->current_leader.leader_id = m->leader_id;
        p->current_leader.leader_epoch = m->epoch;
        p->size = m->size;
        p->position = m->position;
        p->unaligned_records = (gr_bytes){m->bytes, (int32_t)m->n_bytes};
        rc = gr_fetch_snapshot_response_encode(r, req->api_version, &req->out);
        break;
    }
    default:
        break;
    }
    gr_request_complete(req, rc == GR_OK ? GR_HANDLED : GR_CLOSE);
}

/* ---- effects ---- */

/* Delivers committed entries to the state machine, up to the high watermark. */
static void apply_committed(gr_quorum *q)
{
    int64_t hw = gr_raft_high_watermark(q->raft);
    while (q->applied < hw) {
        size_t n;
        gr_raft_entry *e = q->entries;
        if (op_read(q, q->applied, 1 << 20, e, MAX_READ_ENTRIES, &n) != 0)
            fatal("cannot read committed entries from the metadata log");
        for (size_t i = 0; i < n && e[i].offset < hw; i++) {
            if (e[i].type == GR_RAFT_ENTRY_DATA) {
                q->cfg.sm.apply(q->cfg.sm.ctx, e[i].offset, e[i].epoch, e[i].data, e[i].len);
                q->bytes_since_snapshot += e[i].len;
            }
            q->applied = e[i].offset + 1;
            q->applied_epoch = e[i].epoch;
        }
    }
    if (q->cfg.snapshot_bytes > 0 && q->bytes_since_snapshot >= q->cfg.snapshot_bytes)
        take_snapshot(q);
}

/* Copies of the core's effects, so that carrying them out may feed the
 * core again (a commit making the controller propose) safely. */
typedef struct {
    gr_raft_effect e;
    gr_raft_msg *msg;
} effect_copy;

static void run_effects(gr_quorum *q)
{
    if (q->in_effects)
        return; /* the outer loop picks up what this call added */
    q->in_effects = true;
    for (;;) {
        const gr_raft_effect *effs;
        size_t n = gr_raft_effects(q->raft, &effs);
        if (n == 0) {
            if (!q->need_flush)
                break;
            q->need_flush = false;
            if (gr_log_flush(q->log, wall_ms()) != GR_LOG_OK)
                fatal("cannot fsync the metadata log");
            if (gr_raft_log_flushed(q->raft, mono_ms(), gr_log_end_offset(q->log)) ==
                GR_RAFT_ERR_IO)
                fatal("metadata log I/O error");
            continue;
        }
        effect_copy *copies = calloc(n, sizeof *copies);
        if (!copies)
            fatal("out of memory");
        for (size_t i = 0; i < n; i++) {
            copies[i].e = effs[i];
            if (effs[i].type == GR_RAFT_EFF_SEND && !(copies[i].msg = gr_raft_msg_dup(&effs[i].msg)))
                fatal("out of memory");
        }
        gr_raft_effects_clear(q->raft);
        for (size_t i = 0; i < n; i++) {
            const gr_raft_effect *e = &copies[i].e;
            switch (e->type) {
            case GR_RAFT_EFF_PERSIST:
                if (persist_state(q, &e->state) != 0)
                    fatal("cannot write the quorum-state file");
                break;
            case GR_RAFT_EFF_SEND: {
                const gr_raft_msg *m = copies[i].msg;
                bool response = m->type == GR_RAFT_MSG_VOTE_RESP ||
                                m->type == GR_RAFT_MSG_BEGIN_EPOCH_RESP ||
                                m->type == GR_RAFT_MSG_END_EPOCH_RESP ||
                                m->type == GR_RAFT_MSG_FETCH_RESP ||
                                m->type == GR_RAFT_MSG_FETCH_SNAPSHOT_RESP;
                if (response)
                    send_response(q, m, GR_NONE);
                else
                    send_request(q, e->to, m);
                break;
            }
            case GR_RAFT_EFF_ROLE:
                GR_INFO(SUB, "node %d is %s in epoch %d (leader %d)", q->cfg.node_id,
                        gr_raft_role_name(e->role), e->epoch, e->leader_id);
                if (q->cfg.sm.role)
                    q->cfg.sm.role(q->cfg.sm.ctx, e->role, e->epoch, e->leader_id);
                break;
            case GR_RAFT_EFF_COMMIT:
                apply_committed(q);
                break;
            case GR_RAFT_EFF_SNAPSHOT_INSTALLED:
                if (load_state(q, e->snapshot) != 0)
                    fatal("cannot load the installed snapshot");
                break;
            }
        }
        for (size_t i = 0; i < n; i++)
            gr_raft_msg_free(copies[i].msg);
        free(copies);
    }
    q->in_effects = false;
    arm_timer(q);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_quorum *q = arg;
    if (gr_raft_tick(q->raft, mono_ms()) == GR_RAFT_ERR_IO)
        fatal("metadata log I/O error");
    run_effects(q);
}

static void arm_timer(gr_quorum *q)
{
    int64_t wait = gr_raft_next_deadline(q->raft) - mono_ms();
    if (wait < 0)
        wait = 0;
    if (wait > 1000)
        wait = 1000;
    struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
    evtimer_add(q->timer, &tv);
}

/* ---- incoming requests ---- */

/* Registers req as waiting for the core's answer to corr. */
static int park(gr_quorum *q, gr_request *req, uint64_t corr)
{
    pending *p = malloc(sizeof *p);
    if (!p)
        return GR_CLOSE;
    *p = (pending){q->pending, corr, req};
    q->pending = p;
    return GR_PENDING;
}

/* Checks the cluster id and the single metadata partition of a request. */
static int16_t check_target(gr_quorum *q, gr_str cluster_id, gr_str topic, int32_t partition)
{
    if (cluster_id.len >= 0 && !gr_str_eq(cluster_id, q->cfg.cluster_id))
        return GR_INCONSISTENT_CLUSTER_ID;
    if ((topic.len >= 0 && !gr_str_eq(topic, GR_METADATA_TOPIC)) || partition != 0)
        return GR_UNKNOWN_TOPIC_OR_PARTITION;
    return GR_NONE;
}

static int handle_describe_quorum(gr_quorum *q, gr_request *req, gr_writer *out)
{
    gr_describe_quorum_request body;
    if (gr_describe_quorum_request_decode(&body, &req->body, req->api_version, &req->arena) !=
        GR_OK)
        return GR_CLOSE;
    KRAFT_MSG(&req->arena, gr_describe_quorum_response, _topic_data, _partition_data, r, t, pd,
              topics, partitions, topic_name);
    if (!r)
        return GR_CLOSE;
    gr_raft_replica_info rows[64];
    size_t n = gr_raft_describe(q->raft, rows, 64);
    if (n > 64)
        n = 64;
    pd->current_voters = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *pd->current_voters);
    pd->observers = gr_arena_calloc(&req->arena, n ? n : 1, sizeof *pd->observers);
    if (!pd->current_voters || !pd->observers)
        return GR_CLOSE;
    bool leader = gr_raft_get_role(q->raft) == GR_RAFT_LEADER;
    pd->error_code = leader ? GR_NONE : GR_NOT_LEADER_OR_FOLLOWER;
    pd->leader_id = gr_raft_leader(q->raft);
    pd->leader_epoch = gr_raft_epoch(q->raft);
    pd->high_watermark = gr_raft_high_watermark(q->raft);
    int64_t now = mono_ms();
    for (size_t i = 0; leader && i < n; i++) {
        gr_describe_quorum_replica_state *s =
            rows[i].voter ? &pd->current_voters[pd->current_voters_count++] : &pd->observers[pd->observers_count++];
        gr_describe_quorum_replica_state_init(s);
        s->replica_id = rows[i].node_id;
        s->log_end_offset = rows[i].end_offset;
        /* Kafka reports wall-clock times; we know how long ago. */
        s->last_fetch_timestamp = rows[i].last_fetch_ms < 0 ? -1
                                                            : wall_ms() - (now - rows[i].last_fetch_ms);
        s->last_caught_up_timestamp = s->last_fetch_timestamp;
    }
    return gr_describe_quorum_response_encode(r, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                               : GR_CLOSE;
}

int gr_quorum_handle(gr_quorum *q, gr_request *req, gr_writer *out)
{
    gr_arena *a = &req->arena;
    gr_raft_msg m = {.leader_id = GR_RAFT_NO_NODE, .snapshot_id = {-1, -1},
                     .diverging_epoch = -1, .diverging_end_offset = -1};
    int16_t err = GR_NONE;
    switch (req->api_key) {
    case GR_API_VOTE: {
        gr_vote_request r;
        if (gr_vote_request_decode(&r, &req->body, req->api_version, a) != GR_OK ||
            r.topics_count != 1 || r.topics[0].partitions_count != 1)
            return GR_CLOSE;
        gr_vote_request_partition_data *p = &r.topics[0].partitions[0];
        err = check_target(q, r.cluster_id, r.topics[0].topic_name, p->partition_index);
        m.type = GR_RAFT_MSG_VOTE_REQ;
        m.from = p->candidate_id;
        m.epoch = p->candidate_epoch;
        m.last_epoch = p->last_offset_epoch;
        m.last_offset = p->last_offset;
        m.pre_vote = p->pre_vote;
        break;
    }
    case GR_API_BEGIN_QUORUM_EPOCH: {
        gr_begin_quorum_epoch_request r;
        if (gr_begin_quorum_epoch_request_decode(&r, &req->body, req->api_version, a) != GR_OK ||
            r.topics_count != 1 || r.topics[0].partitions_count != 1)
            return GR_CLOSE;
        gr_begin_quorum_epoch_request_partition_data *p = &r.topics[0].partitions[0];
        err = check_target(q, r.cluster_id, r.topics[0].topic_name, p->partition_index);
        m.type = GR_RAFT_MSG_BEGIN_EPOCH_REQ;
        m.from = p->leader_id;
        m.leader_id = p->leader_id;
        m.epoch = p->leader_epoch;
        break;
    }
    case GR_API_END_QUORUM_EPOCH: {
        gr_end_quorum_epoch_request r;
        if (gr_end_quorum_epoch_request_decode(&r, &req->body, req->api_version, a) != GR_OK ||
            r.topics_count != 1 || r.topics[0].partitions_count != 1)
            return GR_CLOSE;
        gr_end_quorum_epoch_request_partition_data *p = &r.topics[0].partitions[0];
        err = check_target(q, r.cluster_id, r.topics[0].topic_name, p->partition_index);
        m.type = GR_RAFT_MSG_END_EPOCH_REQ;
        m.from = p->leader_id;
        m.leader_id = p->leader_id;
        m.epoch = p->leader_epoch;
        break;
    }
    case GR_API_FETCH: {
        gr_fetch_request r;
        if (gr_fetch_request_decode(&r, &req->body, req->api_version, a) != GR_OK ||
            r.topics_count != 1 || r.topics[0].partitions_count != 1)
            return GR_CLOSE;
        gr_fetch_request_fetch_partition *p = &r.topics[0].partitions[0];
        err = check_target(q, r.cluster_id, req->api_version >= 13 ? GR_STR_NULL : r.topics[0].topic,
                           p->partition);
        if (req->api_version >= 13 && memcmp(&r.topics[0].topic_id, &metadata_topic_id, 16) != 0)
            err = GR_UNKNOWN_TOPIC_ID;
        m.type = GR_RAFT_MSG_FETCH_REQ;
        m.from = req->api_version >= 15 ? r.replica_state.replica_id : r.replica_id;
        m.epoch = p->current_leader_epoch;
        m.fetch_offset = p->fetch_offset;
        m.last_fetched_epoch = p->last_fetched_epoch;
        break;
    }
    case GR_API_FETCH_SNAPSHOT: {
        gr_fetch_snapshot_request r;
        if (gr_fetch_snapshot_request_decode(&r, &req->body, req->api_version, a) != GR_OK ||
            r.topics_count != 1 || r.topics[0].partitions_count != 1)
            return GR_CLOSE;
        gr_fetch_snapshot_request_partition_snapshot *p = &r.topics[0].partitions[0];
        err = check_target(q, r.cluster_id, r.topics[0].name, p->partition);
        m.type = GR_RAFT_MSG_FETCH_SNAPSHOT_REQ;
        m.from = r.replica_id;
        m.epoch = p->current_leader_epoch;
        m.snapshot_id = (gr_raft_snapshot_id){p->snapshot_id.end_offset, p->snapshot_id.epoch};
        m.position = p->position;
        break;
    }
    case GR_API_DESCRIBE_QUORUM:
        return handle_describe_quorum(q, req, out);
    default:
        return GR_CLOSE;
    }
    if (err != GR_NONE) {
        /* Not for this quorum: answer with the error, without the core.
         * Each request type is followed by its response type. */
        GR_WARN(SUB, "node %d: %s from %s refused: %s", q->cfg.node_id,
                gr_api_lookup(req->api_key)->name, req->peer, gr_kafka_error_name(err));
        gr_raft_msg resp = {.type = (gr_raft_msg_type)(m.type + 1),
                            .leader_id = gr_raft_leader(q->raft), .epoch = gr_raft_epoch(q->raft),
                            .snapshot_id = {-1, -1}, .diverging_epoch = -1,
                            .diverging_end_offset = -1, .high_watermark = -1,
                            .corr = ++q->next_corr};
        int rc = park(q, req, resp.corr);
        if (rc == GR_PENDING)
            send_response(q, &resp, err);
        return rc;
    }
    m.corr = ++q->next_corr;
    int rc = park(q, req, m.corr);
    if (rc != GR_PENDING)
        return rc;
    GR_DEBUG(SUB, "node %d: %s from node %d (epoch %d)", q->cfg.node_id,
             gr_raft_msg_type_name(m.type), m.from, m.epoch);
    deliver(q, &m);
    return GR_PENDING;
}

/* ---- life ---- */

int gr_quorum_propose(gr_quorum *q, const uint8_t *data, size_t len, int64_t *offset)
{
    /* An entry must fit in a segment with its batch header: refusing it
     * here keeps a large request from failing the log, which is fatal. */
    if (len + GR_BATCH_HEADER_SIZE + 64 > (size_t)q->segment_bytes) {
        GR_WARN(SUB, "node %d: an entry of %zu bytes does not fit metadata.log.segment.bytes (%lld)",
                q->cfg.node_id, len, (long long)q->segment_bytes);
        return GR_RAFT_ERR_INVALID;
    }
    gr_raft_entry e = {.type = GR_RAFT_ENTRY_DATA, .len = (uint32_t)len, .data = data};
    int rc = gr_raft_propose(q->raft, mono_ms(), &e, 1, offset);
    if (rc == GR_RAFT_ERR_IO)
        fatal("metadata log I/O error");
    run_effects(q);
    return rc;
}

gr_raft_role gr_quorum_role(const gr_quorum *q) { return gr_raft_get_role(q->raft); }
int32_t gr_quorum_epoch(const gr_quorum *q) { return gr_raft_epoch(q->raft); }
int32_t gr_quorum_leader(const gr_quorum *q) { return gr_raft_leader(q->raft); }
int64_t gr_quorum_high_watermark(const gr_quorum *q) { return gr_raft_high_watermark(q->raft); }
int64_t gr_quorum_applied(const gr_quorum *q) { return q->applied; }
int64_t gr_quorum_end_offset(const gr_quorum *q) { return gr_log_end_offset(q->log); }

const gr_voter *gr_quorum_voter(const gr_quorum *q, int32_t id)
{
    for (size_t i = 0; i < q->cfg.n_voters; i++)
        if (q->cfg.voters[i].id == id)
            return &q->cfg.voters[i];
    return NULL;
}

gr_quorum *gr_quorum_open(struct event_base *base, const gr_quorum_config *cfg)
{
    if (cfg->n_voters == 0 || cfg->n_voters > GR_RAFT_MAX_VOTERS) {
        GR_ERROR(SUB, "controller.quorum.voters must name 1 to %d voters", GR_RAFT_MAX_VOTERS);
        return NULL;
    }
    gr_quorum *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->cfg = *cfg;
    q->base = base;
    q->snap_fd = -1;
    snprintf(q->dir, sizeof q->dir, "%s", cfg->dir);
    snprintf(q->logdir, sizeof q->logdir, "%s/%s-0", cfg->dir, GR_METADATA_TOPIC);

    gr_log_config lc;
    gr_log_config_defaults(&lc);
    lc.segment_bytes = cfg->segment_bytes > 0 ? cfg->segment_bytes : 1 << 30;
    q->segment_bytes = lc.segment_bytes;
    lc.retention_ms = -1;       /* the prefix goes with snapshots, not by time */
    if (gr_log_open(&q->log, cfg->dir, GR_METADATA_TOPIC, 0, &lc, wall_ms()) != GR_LOG_OK) {
        GR_ERROR(SUB, "cannot open the metadata log in %s", cfg->dir);
        free(q);
        return NULL;
    }
    gr_raft_quorum_state st;
    gr_raft_snapshot_id snap = latest_snapshot(q);
    remove_old_snapshots(q, snap, true);
    if (load_state_file(q, &st) != 0 || load_state(q, snap) != 0) {
        gr_log_close(q->log, wall_ms());
        free(q);
        return NULL;
    }
    if (snap.end_offset > gr_log_end_offset(q->log) || snap.end_offset > 0) {
        /* Entries below the snapshot need not be kept (nor read). */
        if (snap.end_offset > gr_log_end_offset(q->log))
            gr_log_reset(q->log, snap.end_offset, wall_ms());
        else if (snap.end_offset > gr_log_start_offset(q->log))
            gr_log_delete_records(q->log, snap.end_offset, wall_ms());
    }

    gr_raft_config rc = cfg->raft;
    rc.node_id = cfg->node_id;
    rc.n_voters = cfg->n_voters;
    for (size_t i = 0; i < cfg->n_voters; i++)
        rc.voters[i] = cfg->voters[i].id;
    uint64_t seed;
    if (getentropy(&seed, sizeof seed) != 0)
        seed = (uint64_t)wall_ms() ^ ((uint64_t)cfg->node_id << 32);
    rc.seed = seed;
    static const gr_raft_log_ops ops_template = {
        .start_offset = op_start_offset, .end_offset = op_end_offset, .epoch_at = op_epoch_at,
        .epoch_end_offset = op_epoch_end_offset, .read = op_read, .append = op_append,
        .truncate = op_truncate, .snapshot_read = op_snapshot_read,
        .snapshot_write = op_snapshot_write, .snapshot_install = op_snapshot_install};
    gr_raft_log_ops ops = ops_template;
    ops.ctx = q;
    char client_id[64];
    snprintf(client_id, sizeof client_id, "raft-%d", cfg->node_id);
    for (size_t i = 0; i < cfg->n_voters; i++)
        if (!(q->peers[i] = gr_kclient_new(base, cfg->voters[i].host, cfg->voters[i].port,
                                           client_id)))
            goto fail;
    q->timer = evtimer_new(base, on_timer, q);
    q->raft = gr_raft_create(&rc, &ops, &st, snap, mono_ms());
    if (!q->timer || !q->raft)
        goto fail;
    GR_INFO(SUB, "node %d opened the metadata log: offsets %" PRId64 "..%" PRId64
                 ", snapshot %" PRId64 ", epoch %d",
            cfg->node_id, gr_log_start_offset(q->log), gr_log_end_offset(q->log), snap.end_offset,
            st.epoch);
    run_effects(q);
    return q;
fail:
    GR_ERROR(SUB, "cannot start the quorum");
    gr_quorum_close(q);
    return NULL;
}

void gr_quorum_close(gr_quorum *q)
{
    if (!q)
        return;
    if (q->timer)
        event_free(q->timer);
    for (size_t i = 0; i < GR_RAFT_MAX_VOTERS; i++)
        if (q->peers[i])
            gr_kclient_free(q->peers[i]); /* outstanding callbacks see no quorum */
    while (q->pending) {
        pending *p = q->pending;
        q->pending = p->next;
        gr_request_complete(p->req, GR_CLOSE);
        free(p);
    }
    if (q->raft)
        gr_raft_destroy(q->raft);
    if (q->log)
        gr_log_close(q->log, wall_ms());
    if (q->snap_fd >= 0)
        close(q->snap_fd);
    free(q->readbuf);
    free(q);
}
