/*
 * topic_config.c - Kafka's topic-level configuration keys and their checks.
 *
 * The table mirrors Kafka 4.0's topic configs; see topic_config.h for what is
 * left out. Parsing follows Java's ConfigDef: INT/LONG/DOUBLE/BOOLEAN values
 * are trimmed, then must parse completely; bounds are inclusive.
 */
#include "common/topic_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

#define LONG_MAX_S "9223372036854775807"

static void fmt(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

/* Is item one of the comma-free words in set (a NULL-terminated array)? */
static bool in_set(const char *item, size_t n, const char *const *set)
{
    for (size_t i = 0; set[i]; i++)
        if (strlen(set[i]) == n && strncmp(set[i], item, n) == 0)
            return true;
    return false;
}

static void join_set(const char *const *set, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; set[i]; i++) {
        int k = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", set[i]);
        if (k < 0 || (size_t)k >= outlen - used)
            return;
        used += (size_t)k;
    }
}

static int one_of(const char *value, const char *const *set, char *err, size_t errlen)
{
    if (in_set(value, strlen(value), set))
        return 0;
    char list[256];
    join_set(set, list, sizeof list);
    fmt(err, errlen, "String must be one of: %s", list);
    return -1;
}

static const char *const compression_types[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const cleanup_policies[] = {"compact", "delete", NULL};

static int v_compression(const char *v, char *err, size_t errlen) { return one_of(v, compression_types, err, errlen); }
static int v_timestamp_type(const char *v, char *err, size_t errlen) { return one_of(v, timestamp_types, err, errlen); }

/* Each comma-separated item (trimmed, empty ones ignored) is compact or delete. */
static int v_cleanup_policy(const char *v, char *err, size_t errlen)
{
    const char *p = v;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e > s && !in_set(s, (size_t)(e - s), cleanup_policies)) {
            fmt(err, errlen, "String must be one of: compact, delete");
            return -1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int v_gzip_level(const char *v, char *err, size_t errlen)
{
    long n = strtol(v, NULL, 10); /* already checked as an INT */
    if (n == -1 || (n >= 1 && n <= 9))
        return 0;
    fmt(err, errlen, "Value must be between 1 and 9 or -1");
    return -1;
}

/* "*" or a list of partition:broker pairs (Kafka's ThrottledReplicaListValidator). */
static int v_throttled(const char *v, char *err, size_t errlen)
{
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    if (strcmp(p, "*") == 0 || *p == '\0')
        return 0;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p++ != ':')
            goto bad;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p))
            p++;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            goto bad;
    }
    return 0;
bad:
    fmt(err, errlen, "must be the literal '*' or a list of replicas in the following format: "
                     "[partitionId]:[brokerId],[partitionId]:[brokerId],...");
    return -1;
}

/* Sorted by name; gr_topic_config_find relies on it. */
const gr_config_def gr_topic_config_defs[] = {
    {"cleanup.policy", GR_CFG_LIST, "delete", 0, 0,
     "delete: remove old segments by time or size; compact: keep the latest record per key", v_cleanup_policy},
    {"compression.gzip.level", GR_CFG_INT, "-1", 0, 0, "gzip level when compression.type is gzip", v_gzip_level},
    {"compression.lz4.level", GR_CFG_INT, "9", 1, 17, "lz4 level when compression.type is lz4", NULL},
    {"compression.type", GR_CFG_STRING, "producer", 0, 0,
     "final compression of the topic's data; producer keeps the producer's codec", v_compression},
    {"compression.zstd.level", GR_CFG_INT, "3", -131072, 22, "zstd level when compression.type is zstd", NULL},
    {"delete.retention.ms", GR_CFG_LONG, "86400000", 0, INT64_MAX,
     "how long delete tombstones are kept on compacted topics", NULL},
    {"file.delete.delay.ms", GR_CFG_LONG, "60000", 0, INT64_MAX,
     "time to wait before deleting a file from the filesystem", NULL},
    {"flush.messages", GR_CFG_LONG, LONG_MAX_S, 1, INT64_MAX, "messages written before an fsync", NULL},
    {"flush.ms", GR_CFG_LONG, LONG_MAX_S, 0, INT64_MAX, "time before an fsync", NULL},
    {"follower.replication.throttled.replicas", GR_CFG_LIST, "", 0, 0,
     "replicas throttled on the follower side", v_throttled},
    {"index.interval.bytes", GR_CFG_INT, "4096", 0, INT32_MAX, "bytes between offset index entries", NULL},
    {"leader.replication.throttled.replicas", GR_CFG_LIST, "", 0, 0, "replicas throttled on the leader side",
     v_throttled},
    {"max.compaction.lag.ms", GR_CFG_LONG, LONG_MAX_S, 1, INT64_MAX,
     "maximum time a record stays ineligible for compaction", NULL},
    {"max.message.bytes", GR_CFG_INT, "1048588", 0, INT32_MAX, "largest record batch size allowed", NULL},
    {"message.timestamp.after.max.ms", GR_CFG_LONG, "3600000", 0, INT64_MAX,
     "how far in the future a CreateTime timestamp may be", NULL},
    {"message.timestamp.before.max.ms", GR_CFG_LONG, LONG_MAX_S, 0, INT64_MAX,
     "how far in the past a CreateTime timestamp may be", NULL},
    {"message.timestamp.type", GR_CFG_STRING, "CreateTime", 0, 0, "CreateTime or LogAppendTime", v_timestamp_type},
    {"min.cleanable.dirty.ratio", GR_CFG_DOUBLE, "0.5", 0, 1, "dirty ratio that makes a log cleanable", NULL},
    {"min.compaction.lag.ms", GR_CFG_LONG, "0", 0, INT64_MAX,
     "minimum time a record stays uncompacted", NULL},
    {"min.insync.replicas", GR_CFG_INT, "1", 1, INT32_MAX,
     "replicas that must acknowledge an acks=all write", NULL},
    {"preallocate", GR_CFG_BOOL, "false", 0, 0, "preallocate segment files", NULL},
    {"retention.bytes", GR_CFG_LONG, "-1", INT64_MIN, INT64_MAX, "largest size of a partition before old segments go; -1: no limit", NULL},
    {"retention.ms", GR_CFG_LONG, "604800000", -1, INT64_MAX, "how long old segments are kept; -1: forever", NULL},
    {"segment.bytes", GR_CFG_INT, "1073741824", 1048576, INT32_MAX, "segment file size", NULL},
    {"segment.index.bytes", GR_CFG_INT, "10485760", 4, INT32_MAX, "offset index size per segment", NULL},
    {"segment.jitter.ms", GR_CFG_LONG, "0", 0, INT64_MAX, "random jitter subtracted from segment.ms", NULL},
    {"segment.ms", GR_CFG_LONG, "604800000", 1, INT64_MAX, "time after which a segment is rolled", NULL},
    {"unclean.leader.election.enable", GR_CFG_BOOL, "false", 0, 0,
     "elect an out-of-sync replica as leader as a last resort (data loss)", NULL},
};
const size_t gr_topic_config_ndefs = sizeof gr_topic_config_defs / sizeof gr_topic_config_defs[0];

const gr_topic_config_synonym gr_topic_config_synonyms[] = {
    {"cleanup.policy", "log.cleanup.policy"},
    {"compression.gzip.level", "compression.gzip.level"},
    {"compression.lz4.level", "compression.lz4.level"},
    {"compression.type", "compression.type"},
    {"compression.zstd.level", "compression.zstd.level"},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms"},
    {"file.delete.delay.ms", "log.segment.delete.delay.ms"},
    {"flush.messages", "log.flush.interval.messages"},
    {"flush.ms", "log.flush.interval.ms"},
    {"flush.ms", "log.flush.scheduler.interval.ms"},
    {"index.interval.bytes", "log.index.interval.bytes"},
    {"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"},
    {"max.message.bytes", "message.max.bytes"},
    {"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms"},
    {"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms"},
    {"message.timestamp.type", "log.message.timestamp.type"},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio"},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"},
    {"min.insync.replicas", "min.insync.replicas"},
    {"preallocate", "log.preallocate"},
    {"retention.bytes", "log.retention.bytes"},
    {"retention.ms", "log.retention.ms"},
    {"retention.ms", "log.retention.minutes"},
    {"retention.ms", "log.retention.hours"},
    {"segment.bytes", "log.segment.bytes"},
    {"segment.index.bytes", "log.index.size.max.bytes"},
    {"segment.jitter.ms", "log.roll.jitter.ms"},
    {"segment.jitter.ms", "log.roll.jitter.hours"},
    {"segment.ms", "log.roll.ms"},
    {"segment.ms", "log.roll.hours"},
    {"unclean.leader.election.enable", "unclean.leader.election.enable"},
};
const size_t gr_topic_config_nsynonyms = sizeof gr_topic_config_synonyms / sizeof gr_topic_config_synonyms[0];

const gr_config_def *gr_topic_config_find(const char *key)
{
    if (!key)
        return NULL;
    size_t lo = 0, hi = gr_topic_config_ndefs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, gr_topic_config_defs[mid].name);
        if (c == 0)
            return &gr_topic_config_defs[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *gr_topic_config_broker_key(const char *topic_key)
{
    for (size_t i = 0; i < gr_topic_config_nsynonyms; i++)
        if (strcmp(gr_topic_config_synonyms[i].topic_key, topic_key) == 0)
            return gr_topic_config_synonyms[i].broker_key;
    return NULL;
}

/* Copies value without surrounding whitespace (Java's String.trim). */
static void trim_copy(const char *value, char *out, size_t outlen)
{
    const char *s = value, *e = value + strlen(value);
    while (s < e && (unsigned char)*s <= ' ')
        s++;
    while (e > s && (unsigned char)e[-1] <= ' ')
        e--;
    size_t n = (size_t)(e - s);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Java's Long.parseLong: optional sign, then decimal digits only. */
static bool parse_long(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return false;
    *out = v;
    return true;
}

int gr_config_def_check(const gr_config_def *def, const char *value, char *err, size_t errlen)
{
    char t[512], why[384];
    why[0] = '\0';
    trim_copy(value, t, sizeof t);
    bool bounded = !(def->min == 0 && def->max == 0);
    switch (def->type) {
    case GR_CFG_INT:
    case GR_CFG_LONG: {
        int64_t v;
        bool ok = parse_long(t, &v);
        if (ok && def->type == GR_CFG_INT && (v < INT32_MIN || v > INT32_MAX))
            ok = false;
        if (!ok) {
            snprintf(why, sizeof why, "Not a number of type %s", def->type == GR_CFG_INT ? "INT" : "LONG");
            goto bad;
        }
        if (bounded && v < def->min) {
            snprintf(why, sizeof why, "Value must be at least %" PRId64, def->min);
            goto bad;
        }
        if (bounded && v > def->max) {
            snprintf(why, sizeof why, "Value must be no more than %" PRId64, def->max);
            goto bad;
        }
        if (def->validate && def->validate(t, why, sizeof why) != 0)
            goto bad;
        return 0;
    }
    case GR_CFG_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(t, &end);
        if (t[0] == '\0' || *end != '\0' || !isfinite(d)) {
            snprintf(why, sizeof why, "Not a number of type DOUBLE");
            goto bad;
        }
        if (bounded && d < (double)def->min) {
            snprintf(why, sizeof why, "Value must be at least %" PRId64, def->min);
            goto bad;
        }
        if (bounded && d > (double)def->max) {
            snprintf(why, sizeof why, "Value must be no more than %" PRId64, def->max);
            goto bad;
        }
        if (def->validate && def->validate(t, why, sizeof why) != 0)
            goto bad;
        return 0;
    }
    case GR_CFG_BOOL:
        if (strcasecmp(t, "true") != 0 && strcasecmp(t, "false") != 0) {
            snprintf(why, sizeof why, "Expected value to be either true or false");
            goto bad;
        }
        return 0;
    case GR_CFG_STRING:
    case GR_CFG_PASSWORD:
        /* Kafka trims STRING values too before validating them. */
        if (def->validate && def->validate(t, why, sizeof why) != 0)
            goto bad;
        return 0;
    case GR_CFG_LIST:
        if (def->validate && def->validate(value, why, sizeof why) != 0)
            goto bad;
        return 0;
    }
    snprintf(why, sizeof why, "unsupported type");
bad:
    fmt(err, errlen, "Invalid value %s for configuration %s: %s", value, def->name, why);
    return GR_INVALID_CONFIG;
}

int gr_topic_config_validate(const char *key, const char *value, char *err, size_t errlen)
{
    const gr_config_def *def = gr_topic_config_find(key);
    if (!def) {
        fmt(err, errlen, "Unknown topic config name: %s", key ? key : "null");
        return GR_INVALID_CONFIG;
    }
    if (!value) {
        fmt(err, errlen, "Null value not supported for topic configs: %s", key);
        return GR_INVALID_CONFIG;
    }
    return gr_config_def_check(def, value, err, errlen);
}
