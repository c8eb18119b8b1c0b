/*
 * topic_settings.c - resolution of a topic's effective log settings; see
 * topic_settings.h for the order of precedence.
 *
 * Values are resolved as text first (the form every source holds them in),
 * checked against the topic key's definition, then parsed once into the
 * typed settings. Broker keys counted in minutes or hours
 * (log.retention.minutes, log.roll.hours, ...) are converted to the topic
 * key's milliseconds before the check.
 */
#include "broker/topic_settings.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/compress.h"
#include "common/logging.h"
#include "common/topic_config.h"

#define SUB "replica"
#define VALUE_MAX 512

typedef struct {
    const char *name;
    gr_topic_settings_lookup topic, broker;
    void *topic_ctx, *broker_ctx;
} resolver;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A broker value in minutes or hours, as the topic key's milliseconds.
 * False when it is not a number or the product overflows. */
static bool scale_to_ms(const char *bkey, const char *text, char *out, size_t outlen)
{
    int64_t unit = ends_with(bkey, ".minutes") ? 60000 : ends_with(bkey, ".hours") ? 3600000 : 1;
    if (unit == 1) {
        snprintf(out, outlen, "%s", text);
        return true;
    }
    char *end;
    long long v = strtoll(text, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == text || *end != '\0')
        return false;
    /* -1 (forever) stays -1 whatever the unit, as in Kafka. */
    if (v < 0) {
        snprintf(out, outlen, "%lld", v);
        return true;
    }
    if (v > INT64_MAX / unit)
        return false;
    snprintf(out, outlen, "%" PRId64, (int64_t)v * unit);
    return true;
}

/* The effective text of topic key `key` into buf. */
static const char *resolve(const resolver *r, const char *key, char *buf, size_t buflen)
{
    char raw[VALUE_MAX], err[256];
    if (r->topic && r->topic(r->topic_ctx, key, raw, sizeof raw)) {
        if (gr_topic_config_validate(key, raw, err, sizeof err) == 0) {
            snprintf(buf, buflen, "%s", raw);
            return buf;
        }
        GR_WARN(SUB, "topic %s: ignoring its %s: %s", r->name, key, err);
    }
    for (size_t i = 0; r->broker && i < gr_topic_config_nsynonyms; i++) {
        const gr_topic_config_synonym *s = &gr_topic_config_synonyms[i];
        if (strcmp(s->topic_key, key) != 0 ||
            !r->broker(r->broker_ctx, s->broker_key, raw, sizeof raw))
            continue;
        /* The broker key has bounds of its own, checked where it was set
         * (log.segment.bytes may go below segment.bytes' 1 MiB floor):
         * here only the type and the validator count. */
        const gr_config_def *def = gr_topic_config_find(key);
        gr_config_def loose = *def;
        loose.min = loose.max = 0;
        if (scale_to_ms(s->broker_key, raw, buf, buflen) &&
            gr_config_def_check(&loose, buf, err, sizeof err) == 0)
            return buf;
        GR_WARN(SUB, "topic %s: ignoring the broker's %s=%s as a default of %s", r->name,
                s->broker_key, raw, key);
    }
    const gr_config_def *def = gr_topic_config_find(key);
    snprintf(buf, buflen, "%s", def && def->dflt ? def->dflt : "");
    return buf;
}

static int64_t get_long(const resolver *r, const char *key)
{
    char buf[VALUE_MAX];
    /* Checked by resolve as a number of the key's type. */
    return strtoll(resolve(r, key, buf, sizeof buf), NULL, 10);
}

static int32_t get_int(const resolver *r, const char *key) { return (int32_t)get_long(r, key); }

static double get_double(const resolver *r, const char *key)
{
    char buf[VALUE_MAX];
    return strtod(resolve(r, key, buf, sizeof buf), NULL);
}

/* cleanup.policy: which of compact and delete the list names. */
static void cleanup_policy(const resolver *r, bool *compact, bool *del)
{
    char buf[VALUE_MAX];
    const char *p = resolve(r, "cleanup.policy", buf, sizeof buf);
    *compact = *del = false;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == 7 && strncmp(s, "compact", 7) == 0)
            *compact = true;
        if ((size_t)(e - s) == 6 && strncmp(s, "delete", 6) == 0)
            *del = true;
        p += n;
        if (*p == ',')
            p++;
    }
}

static void compression(const resolver *r, int32_t *codec, int32_t *level)
{
    char buf[VALUE_MAX];
    const char *v = resolve(r, "compression.type", buf, sizeof buf);
    gr_codec c = GR_CODEC_NONE;
    *level = -1;
    if (strcmp(v, "producer") == 0) {
        *codec = GR_TOPIC_COMPRESSION_PRODUCER;
        return;
    }
    if (strcmp(v, "uncompressed") != 0 && gr_codec_parse(v, &c) != GR_OK)
        c = GR_CODEC_NONE; /* cannot happen: the value passed the key's check */
    *codec = (int32_t)c;
    if (c == GR_CODEC_GZIP)
        *level = get_int(r, "compression.gzip.level");
    else if (c == GR_CODEC_LZ4)
        *level = get_int(r, "compression.lz4.level");
    else if (c == GR_CODEC_ZSTD)
        *level = get_int(r, "compression.zstd.level");
    /* zstd's negative (fast) levels cannot be asked of the codec layer:
     * they compress with the default level instead. */
    if (*level < 0)
        *level = -1;
}

void gr_topic_settings_build(gr_topic_settings *out, const char *name,
                             gr_topic_settings_lookup topic, void *topic_ctx,
                             gr_topic_settings_lookup broker, void *broker_ctx)
{
    const resolver r = {name ? name : "?", topic, broker, topic_ctx, broker_ctx};
    char buf[VALUE_MAX];
    memset(out, 0, sizeof *out);
    gr_log_config_defaults(&out->log);
    gr_cleaner_config_defaults(&out->cleaner);
    cleanup_policy(&r, &out->compact, &out->delete_);

    gr_log_config *l = &out->log;
    l->segment_bytes = get_int(&r, "segment.bytes");
    l->segment_ms = get_long(&r, "segment.ms");
    l->segment_index_bytes = get_int(&r, "segment.index.bytes");
    l->index_interval_bytes = get_int(&r, "index.interval.bytes");
    l->flush_interval_messages = get_long(&r, "flush.messages");
    l->flush_interval_ms = get_long(&r, "flush.ms");
    l->file_delete_delay_ms = get_long(&r, "file.delete.delay.ms");
    l->log_append_time =
        strcmp(resolve(&r, "message.timestamp.type", buf, sizeof buf), "LogAppendTime") == 0;
    /* A log whose policy lacks delete is never trimmed by time or size
     * (Kafka's log manager skips it in its retention pass). */
    l->retention_ms = out->delete_ ? get_long(&r, "retention.ms") : -1;
    l->retention_bytes = out->delete_ ? get_long(&r, "retention.bytes") : -1;
    if (l->retention_bytes < 0)
        l->retention_bytes = -1;

    gr_cleaner_config *c = &out->cleaner;
    c->min_cleanable_dirty_ratio = get_double(&r, "min.cleanable.dirty.ratio");
    c->min_compaction_lag_ms = get_long(&r, "min.compaction.lag.ms");
    c->max_compaction_lag_ms = get_long(&r, "max.compaction.lag.ms");
    c->delete_retention_ms = get_long(&r, "delete.retention.ms");
    c->segment_bytes = l->segment_bytes;
    c->delete_too = out->compact && out->delete_;

    out->max_message_bytes = get_int(&r, "max.message.bytes");
    compression(&r, &out->compression, &out->compression_level);
    out->ts_before_max_ms = get_long(&r, "message.timestamp.before.max.ms");
    out->ts_after_max_ms = get_long(&r, "message.timestamp.after.max.ms");
    out->min_insync_replicas = get_int(&r, "min.insync.replicas");
}

/* ---- bound to the metadata image and the broker's configuration ---- */

typedef struct {
    const gr_metadata_image *img;
    gr_str topic;
    char node[16];
    const gr_config *cfg;
} image_ctx;

static const char *copy_str(gr_str v, char *buf, size_t buflen)
{
    if (v.len < 0 || !v.ptr || (size_t)v.len >= buflen)
        return NULL;
    memcpy(buf, v.ptr, (size_t)v.len);
    buf[v.len] = '\0';
    return buf;
}

static const char *image_topic(void *ctx, const char *key, char *buf, size_t buflen)
{
    image_ctx *c = ctx;
    if (!c->img)
        return NULL;
    return copy_str(gr_metadata_config(c->img, GR_METADATA_RESOURCE_TOPIC, c->topic, key), buf,
                    buflen);
}

static const char *image_broker(void *ctx, const char *key, char *buf, size_t buflen)
{
    image_ctx *c = ctx;
    if (c->img) {
        const char *v = copy_str(gr_metadata_config(c->img, GR_METADATA_RESOURCE_BROKER,
                                                    gr_str_from(c->node), key),
                                 buf, buflen);
        if (!v)
            v = copy_str(gr_metadata_config(c->img, GR_METADATA_RESOURCE_BROKER,
                                            gr_str_from(""), key),
                         buf, buflen);
        if (v)
            return v;
    }
    const char *s = c->cfg ? gr_config_original(c->cfg, key) : NULL;
    if (!s || strlen(s) >= buflen)
        return NULL;
    memcpy(buf, s, strlen(s) + 1);
    return buf;
}

void gr_topic_settings_from_image(gr_topic_settings *out, const gr_metadata_image *img,
                                  gr_str name, int32_t node_id, const gr_config *cfg)
{
    image_ctx c = {.img = img, .topic = name, .cfg = cfg};
    snprintf(c.node, sizeof c.node, "%d", node_id);
    char tname[256];
    snprintf(tname, sizeof tname, "%.*s", name.len > 0 ? (int)name.len : 0,
             name.ptr ? name.ptr : "");
    gr_topic_settings_build(out, tname, image_topic, &c, image_broker, &c);
}
