/*
 * api_describe_log_dirs.c - DescribeLogDirs (v1-v4; Kafka 4.0 dropped v0):
 * this broker's log directories and the partition replicas in each
 * (kafka-log-dirs.sh --describe, Admin.describeLogDirs).
 *
 * One result per directory of log.dirs (else log.dir), named by its
 * absolute path as Kafka names it (relative paths are taken from the
 * working directory; the same directory listed twice is answered once).
 * A directory that cannot be examined (statvfs fails: missing, unreadable)
 * answers KAFKA_STORAGE_ERROR with no topics, as Kafka does for an offline
 * directory. Otherwise: error 0, v4's total_bytes and usable_bytes of its
 * file system (statvfs: blocks and blocks available to unprivileged users,
 * as Java's FileStore reports them), and its partitions, grouped by topic:
 * partition_size is the bytes of its segment files, offset_lag is how far
 * the high watermark is ahead of the log end offset (0 on a leader; Kafka's
 * definition for a current, non-future log), is_future_key is false (no
 * AlterReplicaLogDirs moves exist).
 *
 * A null topic list asks for every partition; otherwise only the listed
 * (topic, partition) pairs that live here are described. Kafka also lists
 * a topic with an empty partition array when none of its requested
 * partitions matched; that entry carries nothing (Admin.describeLogDirs
 * drops it), so only topics with a partition are listed here.
 *
 * The replica manager puts every partition under the first log directory
 * today; the others are answered, empty, all the same.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/api.h"
#include "broker/replica.h"
#include "common/errors.h"
#include "common/logging.h"

/* dir as an absolute path without trailing slashes, in the arena; NULL on
 * allocation failure. */
static char *absolute_dir(gr_arena *a, const char *dir, size_t dlen)
{
    char cwd[4096] = "";
    if (dlen == 0 || dir[0] != '/') {
        if (!getcwd(cwd, sizeof cwd))
            cwd[0] = 0; /* answered relative: the best there is */
    }
    size_t clen = strlen(cwd);
    char *out = gr_arena_alloc(a, clen + 1 + dlen + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    if (clen) {
        memcpy(out, cwd, clen);
        n = clen;
        if (dlen && out[n - 1] != '/')
            out[n++] = '/';
    }
    memcpy(out + n, dir, dlen);
    n += dlen;
    while (n > 1 && out[n - 1] == '/')
        n--;
    out[n] = 0;
    return out;
}

/* The request asks about topic-index (a null list asks about all). */
static bool selected(const gr_describe_log_dirs_request *body, const char *topic, int32_t index)
{
    if (body->topics_count < 0)
        return true; /* null: all (an empty list asks for none) */
    size_t tlen = strlen(topic);
    for (int32_t i = 0; i < body->topics_count; i++) {
        const gr_describe_log_dirs_request_describable_log_dir_topic *t = &body->topics[i];
        if (t->topic.len < 0 || (size_t)t->topic.len != tlen || memcmp(t->topic.ptr, topic, tlen))
            continue;
        for (int32_t k = 0; k < t->partitions_count; k++)
            if (t->partitions[k] == index)
                return true;
    }
    return false;
}

/* The partitions of ps that live in dir (absolute) and are selected, as
 * topics; -1 on allocation failure. ps is grouped by topic. */
static int describe_dir(gr_request *req, const gr_describe_log_dirs_request *body,
                        gr_partition **ps, size_t n, const char *dir,
                        gr_describe_log_dirs_response_describe_log_dirs_result *res)
{
    gr_arena *a = &req->arena;
    gr_describe_log_dirs_response_describe_log_dirs_topic *topics =
        gr_arena_calloc(a, n, sizeof *topics); /* at most one per partition */
    if (!topics)
        return -1;
    int32_t nt = 0;
    /* Partitions share their parent directory: resolve each distinct one
     * once (the last one seen) rather than once per partition. */
    const char *last = NULL;
    size_t last_len = 0;
    bool last_here = false;
    for (size_t i = 0; i < n; i++) {
        gr_partition *p = ps[i];
        const char *slash = strrchr(p->dir, '/');
        size_t plen = slash ? (size_t)(slash - p->dir) : 0;
        if (!last || plen != last_len || memcmp(last, p->dir, plen) != 0) {
            char *parent = absolute_dir(a, p->dir, plen);
            if (!parent)
                return -1;
            last = p->dir;
            last_len = plen;
            last_here = strcmp(parent, dir) == 0;
        }
        if (!last_here || !selected(body, p->topic, p->index))
            continue;
        gr_describe_log_dirs_response_describe_log_dirs_topic *t =
            nt ? &topics[nt - 1] : NULL;
        if (!t || t->name.len != (int32_t)strlen(p->topic) ||
            memcmp(t->name.ptr, p->topic, (size_t)t->name.len) != 0) {
            t = &topics[nt++];
            gr_describe_log_dirs_response_describe_log_dirs_topic_init(t);
            t->name = (gr_str){p->topic, (int32_t)strlen(p->topic)};
            /* Room for the rest of ps: the topic's partitions are consecutive. */
            t->partitions = gr_arena_calloc(a, n - i, sizeof *t->partitions);
            if (!t->partitions)
                return -1;
        }
        gr_describe_log_dirs_response_describe_log_dirs_partition *out =
            &t->partitions[t->partitions_count++];
        gr_describe_log_dirs_response_describe_log_dirs_partition_init(out);
        out->partition_index = p->index;
        uint64_t size = gr_log_size_bytes(p->log);
        out->partition_size = size > INT64_MAX ? INT64_MAX : (int64_t)size;
        int64_t lag = atomic_load(&p->hw) - gr_log_end_offset(p->log);
        out->offset_lag = lag > 0 ? lag : 0;
        out->is_future_key = false;
    }
    res->topics = topics;
    res->topics_count = nt;
    return 0;
}

/* Fills res for one log directory. -1 on allocation failure. */
static int describe_one(gr_request *req, const gr_describe_log_dirs_request *body,
                        gr_partition **ps, size_t n, const char *dir,
                        gr_describe_log_dirs_response_describe_log_dirs_result *res)
{
    gr_describe_log_dirs_response_describe_log_dirs_result_init(res);
    res->log_dir = (gr_str){dir, (int32_t)strlen(dir)};
    res->total_bytes = -1;
    res->usable_bytes = -1;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) {
        GR_WARN("api", "DescribeLogDirs: log directory %s is offline: %s", dir, strerror(errno));
        res->error_code = GR_KAFKA_STORAGE_ERROR;
        return 0;
    }
    /* Java's FileStore answers Long.MAX_VALUE for sizes that overflow. */
    unsigned long long frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
    unsigned long long total = (unsigned long long)vfs.f_blocks * frsize;
    unsigned long long usable = (unsigned long long)vfs.f_bavail * frsize;
    bool overflow = frsize && (vfs.f_blocks > (unsigned long long)INT64_MAX / frsize);
    res->total_bytes = overflow || total > INT64_MAX ? INT64_MAX : (int64_t)total;
    res->usable_bytes = overflow || usable > INT64_MAX ? INT64_MAX : (int64_t)usable;
    return describe_dir(req, body, ps, n, dir, res);
}

int gr_handle_describe_log_dirs(gr_request *req, gr_writer *out)
{
    gr_broker *b = req->ctx;
    gr_describe_log_dirs_request body;
    int rc = gr_describe_log_dirs_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed DescribeLogDirs v%d body from %s: %s", req->api_version,
                req->peer, gr_err_str(rc));
        return GR_CLOSE;
    }
    size_t ndirs = 0;
    const char *const *dirs = gr_config_list(b->config, "log.dirs", &ndirs);
    const char *single = gr_config_str(b->config, "log.dir");
    if (ndirs == 0) {
        dirs = &single;
        ndirs = single ? 1 : 0;
    }
    gr_describe_log_dirs_response resp;
    gr_describe_log_dirs_response_init(&resp);
    resp.results = gr_arena_calloc(&req->arena, ndirs, sizeof *resp.results);
    if (!resp.results)
        return GR_CLOSE;
    gr_partition **ps;
    size_t n;
    if (gr_replica_list(b->replicas, &ps, &n) != 0) {
        GR_ERROR("api", "DescribeLogDirs: out of memory listing the partitions");
        return GR_CLOSE;
    }
    rc = GR_HANDLED;
    for (size_t i = 0; i < ndirs && rc == GR_HANDLED; i++) {
        char *dir = absolute_dir(&req->arena, dirs[i], strlen(dirs[i]));
        if (!dir) {
            rc = GR_CLOSE;
            break;
        }
        bool seen = false;
        for (int32_t k = 0; k < resp.results_count && !seen; k++)
            seen = strcmp(resp.results[k].log_dir.ptr, dir) == 0;
        if (seen)
            continue;
        if (describe_one(req, &body, ps, n, dir, &resp.results[resp.results_count++]) != 0)
            rc = GR_CLOSE;
    }
    /* The answer points at the partitions' topic names: encode, then let go. */
    if (rc == GR_HANDLED &&
        gr_describe_log_dirs_response_encode(&resp, req->api_version, out) != GR_OK)
        rc = GR_CLOSE;
    gr_replica_list_free(ps, n);
    return rc;
}
