/*
 * offsets_topic.c - Java's String.hashCode over UTF-8 input, the
 * coordinator partition Kafka derives from it, and how the internal topics
 * are created.
 */
#include "broker/offsets_topic.h"

#include <stdio.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s[*i]; returns the code point, or U+FFFD
 * (consuming one byte) for an invalid or truncated sequence. */
static uint32_t next_code_point(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        (*i)++;
        return 0xFFFD;
    }
    if (*i + need >= len) { /* truncated */
        (*i)++;
        return 0xFFFD;
    }
    for (size_t k = 1; k <= need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return 0xFFFD;
    }
    *i += need + 1;
    return cp;
}

int32_t gr_java_string_hash(const char *s, size_t len)
{
    /* Java int arithmetic wraps; do it in unsigned to keep C defined. */
    uint32_t h = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp = next_code_point(u, len, &i);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

int32_t gr_coordinator_partition(const char *key, size_t len, int32_t nparts)
{
    int32_t h = gr_java_string_hash(key, len);
    /* Kafka's Utils.abs: Integer.MIN_VALUE becomes 0. */
    uint32_t a = h == INT32_MIN ? 0u : (uint32_t)(h < 0 ? -h : h);
    return (int32_t)(a % (uint32_t)nparts);
}

bool gr_internal_topic(gr_str name)
{
    return gr_str_eq(name, GR_OFFSETS_TOPIC) || gr_str_eq(name, GR_TRANSACTION_TOPIC) ||
           gr_str_eq(name, GR_SHARE_STATE_TOPIC);
}

static void add_config(gr_internal_topic_spec *s, const char *name, const char *value)
{
    int i = s->nconfigs++;
    snprintf(s->values[i], sizeof s->values[i], "%s", value);
    s->configs[i].name = name;
    s->configs[i].value = s->values[i];
}

static void add_config_int(gr_internal_topic_spec *s, const char *name, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    add_config(s, name, buf);
}

bool gr_internal_topic_spec_for(const gr_config *cfg, gr_str name, int32_t live_brokers,
                                gr_internal_topic_spec *out)
{
    memset(out, 0, sizeof *out);
    bool txn = gr_str_eq(name, GR_TRANSACTION_TOPIC);
    if (!txn && !gr_str_eq(name, GR_OFFSETS_TOPIC))
        return false;
    /* Kafka's groupMetadataTopicConfigs and transactionTopicConfigs. */
    int32_t rf;
    if (txn) {
        out->partitions = gr_config_int(cfg, "transaction.state.log.num.partitions");
        rf = gr_config_int(cfg, "transaction.state.log.replication.factor");
    } else {
        out->partitions = gr_config_int(cfg, "offsets.topic.num.partitions");
        rf = gr_config_int(cfg, "offsets.topic.replication.factor");
    }
    out->wanted_replication_factor = (int16_t)rf;
    if (live_brokers > 0 && rf > live_brokers) {
        rf = live_brokers;
        out->capped = true;
    }
    out->replication_factor = (int16_t)rf;
    add_config(out, "cleanup.policy", "compact");
    if (txn) {
        int32_t min_isr = gr_config_int(cfg, "transaction.state.log.min.isr");
        add_config(out, "compression.type", "uncompressed");
        add_config(out, "unclean.leader.election.enable", "false");
        add_config_int(out, "min.insync.replicas", min_isr < rf ? min_isr : rf);
        add_config_int(out, "segment.bytes", gr_config_int(cfg, "transaction.state.log.segment.bytes"));
    } else {
        add_config(out, "compression.type", "producer");
        add_config_int(out, "segment.bytes", gr_config_int(cfg, "offsets.topic.segment.bytes"));
    }
    return true;
}
