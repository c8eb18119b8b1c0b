/*
 * metadata.h - the metadata image: the cluster's metadata as a state machine
 * over the records of the KRaft metadata log.
 *
 * Controllers and brokers apply the same records, in log order, to an image
 * like this one; brokers answer Metadata (and DescribeConfigs, ...) from it,
 * the active controller makes its decisions against it. Applying a record
 * follows Kafka's own replay rules (see metadata.c for the details that
 * matter: the -2 "no leader change" of PartitionChangeRecord, the epochs it
 * bumps, broker epochs checked by fence/unfence/unregister).
 *
 * The module is a pure core: no I/O, no clocks, no threads, no logging. The
 * caller reads the log, hands each record value (a metadata frame, see
 * gr_metadata_record_decode) to gr_metadata_apply, and decides what to do
 * with a record that does not apply.
 *
 * Invariants:
 *  - apply is all or nothing: on any error, including allocation failure,
 *    the image is exactly as it was before the call;
 *  - the image owns a copy of every string and array it holds; the records
 *    it was built from may die as soon as apply returns;
 *  - pointers the read API returns stay valid until the next apply or free
 *    of the image (not longer: an apply may move or free what they point at).
 *  - topic names and topic ids are unique; brokers are unique by id.
 *
 * Lookups by topic name and by topic id are hash lookups; brokers are kept
 * sorted by id (binary search, and sorted iteration for responses).
 */
#ifndef GR_METADATA_H
#define GR_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "proto/messages.h"

typedef enum {
    GR_METADATA_OK = 0,
    GR_METADATA_ERR_DECODE = -1,  /* the frame is truncated or malformed (or has trailing bytes) */
    GR_METADATA_ERR_VERSION = -2, /* unknown frame/record type or record version */
    GR_METADATA_ERR_NOMEM = -3,
    GR_METADATA_ERR_INVALID = -4, /* a well-formed record that does not fit the image (unknown
                                     topic or broker, broker epoch mismatch, duplicate topic, ...) */
} gr_metadata_err;

const char *gr_metadata_err_str(int err);

/* Config resource types (Kafka's ConfigResource.Type ids). */
enum {
    GR_METADATA_RESOURCE_TOPIC = 2,
    GR_METADATA_RESOURCE_BROKER = 4,
    GR_METADATA_RESOURCE_BROKER_LOGGER = 8,
    GR_METADATA_RESOURCE_CLIENT_METRICS = 16,
    GR_METADATA_RESOURCE_GROUP = 32,
};

/* A list of broker ids. Empty lists have ids == NULL. */
typedef struct {
    int32_t *ids;
    int32_t count;
} gr_metadata_ids;

typedef struct {
    gr_str name; /* listener name */
    gr_str host;
    uint16_t port;
    int16_t security_protocol;
} gr_metadata_endpoint;

typedef struct {
    gr_str name;
    int16_t min_version, max_version;
} gr_metadata_broker_feature;

typedef struct {
    int32_t id;
    gr_uuid incarnation_id;
    int64_t epoch;
    gr_metadata_endpoint *endpoints;
    int32_t endpoint_count;
    gr_metadata_broker_feature *features; /* supported feature ranges */
    int32_t feature_count;
    gr_str rack; /* null if the broker has none */
    bool fenced;
    bool in_controlled_shutdown;
} gr_metadata_broker;

typedef struct {
    int32_t id;
    gr_metadata_ids replicas; /* preferred order */
    gr_metadata_ids isr;
    gr_metadata_ids removing;
    gr_metadata_ids adding;
    gr_metadata_ids elr;            /* eligible leader replicas (empty if none) */
    gr_metadata_ids last_known_elr; /* (empty if none) */
    int32_t leader;                 /* -1: no leader */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int8_t leader_recovery_state; /* 0 recovered, 1 recovering */
} gr_metadata_partition;

typedef struct {
    gr_str name;
    gr_uuid id;
    gr_metadata_partition *partitions; /* sorted by partition id */
    int32_t partition_count;
    /* private */
    int32_t partition_cap_;
    size_t slot_;
} gr_metadata_topic;

typedef struct {
    gr_str key;
    gr_str value; /* never null: a null value removes the entry */
} gr_metadata_config_entry;

/* The configs set on one resource; a resource with no entries does not exist. */
typedef struct {
    int8_t type;
    gr_str name;
    gr_metadata_config_entry *entries; /* in the order they were first set */
    int32_t count;
    /* private */
    int32_t cap_;
} gr_metadata_config_resource;

typedef struct {
    gr_str name;
    int16_t level; /* never 0: level 0 removes the feature */
} gr_metadata_feature;

typedef struct gr_metadata_image gr_metadata_image;

/* An empty image (no last applied record: offset -1, epoch -1). NULL on OOM. */
gr_metadata_image *gr_metadata_image_new(void);
void gr_metadata_image_free(gr_metadata_image *img); /* NULL is fine */

/* ---- applying records ---- */

/*
 * Decodes one metadata frame (the value of a metadata log record) and
 * applies it. On success the image's last applied position becomes
 * (offset, epoch); on any error nothing changes. The whole of frame must be
 * the record: trailing bytes are GR_METADATA_ERR_DECODE. Offsets are not
 * checked for order (records of a snapshot all carry the snapshot's
 * position).
 */
int gr_metadata_apply(gr_metadata_image *img, const uint8_t *frame, size_t len, int64_t offset,
                      int32_t epoch);

/* Applies a decoded record of the given GR_METADATA_RECORD_* type; does not move the position. */
int gr_metadata_apply_record(gr_metadata_image *img, int16_t type, const void *record);

/* Typed forms of the same, for the controller. None moves the position. */
int gr_metadata_apply_topic(gr_metadata_image *img, const gr_topic_record *r);
int gr_metadata_apply_partition(gr_metadata_image *img, const gr_partition_record *r);
int gr_metadata_apply_partition_change(gr_metadata_image *img, const gr_partition_change_record *r);
int gr_metadata_apply_remove_topic(gr_metadata_image *img, const gr_remove_topic_record *r);
int gr_metadata_apply_register_broker(gr_metadata_image *img, const gr_register_broker_record *r);
int gr_metadata_apply_unregister_broker(gr_metadata_image *img,
                                        const gr_unregister_broker_record *r);
int gr_metadata_apply_broker_registration_change(gr_metadata_image *img,
                                                 const gr_broker_registration_change_record *r);
int gr_metadata_apply_fence_broker(gr_metadata_image *img, const gr_fence_broker_record *r);
int gr_metadata_apply_unfence_broker(gr_metadata_image *img, const gr_unfence_broker_record *r);
int gr_metadata_apply_config(gr_metadata_image *img, const gr_config_record *r);
int gr_metadata_apply_producer_ids(gr_metadata_image *img, const gr_producer_ids_record *r);
int gr_metadata_apply_feature_level(gr_metadata_image *img, const gr_feature_level_record *r);

/* ---- reading ---- */

/* Offset and epoch of the last record gr_metadata_apply applied (-1, -1 if none). */
int64_t gr_metadata_last_offset(const gr_metadata_image *img);
int32_t gr_metadata_last_epoch(const gr_metadata_image *img);

const gr_metadata_topic *gr_metadata_topic_by_name(const gr_metadata_image *img, gr_str name);
const gr_metadata_topic *gr_metadata_topic_by_id(const gr_metadata_image *img, const gr_uuid *id);
/* Topics in no particular order (removals reorder them): for i in [0, count). */
size_t gr_metadata_topic_count(const gr_metadata_image *img);
const gr_metadata_topic *gr_metadata_topic_at(const gr_metadata_image *img, size_t i);
/* The partition with this id, or NULL (binary search). */
const gr_metadata_partition *gr_metadata_partition_get(const gr_metadata_topic *t, int32_t id);

const gr_metadata_broker *gr_metadata_broker_get(const gr_metadata_image *img, int32_t id);
/* Brokers sorted by id: for i in [0, count). */
size_t gr_metadata_broker_count(const gr_metadata_image *img);
const gr_metadata_broker *gr_metadata_broker_at(const gr_metadata_image *img, size_t i);

/* The value of one config key (a null gr_str if unset); key is a C string. */
gr_str gr_metadata_config(const gr_metadata_image *img, int8_t type, gr_str resource,
                          const char *key);
/* Every config set on one resource, or NULL if none is. */
const gr_metadata_config_resource *gr_metadata_config_resource_get(const gr_metadata_image *img,
                                                               int8_t type, gr_str resource);

/* Finalized feature level, 0 if the feature is not finalized. */
int16_t gr_metadata_feature_level(const gr_metadata_image *img, const char *name);
/* Finalized features sorted by name: for i in [0, count). */
size_t gr_metadata_feature_count(const gr_metadata_image *img);
const gr_metadata_feature *gr_metadata_feature_at(const gr_metadata_image *img, size_t i);

/* The first producer id of the next block to hand out, -1 if none was ever allocated. */
int64_t gr_metadata_next_producer_id(const gr_metadata_image *img);

/* ---- snapshots ---- */

/*
 * Called once per record with a complete metadata frame (valid only during
 * the call). A non-zero return stops the walk and is returned by
 * gr_metadata_image_write.
 */
typedef int (*gr_metadata_emit_fn)(void *ctx, const uint8_t *frame, size_t len);

/*
 * Writes the image as the records that rebuild it: feature levels, brokers,
 * topics each followed by its partitions, configs, the producer id block.
 * Applying them in order to an empty image yields an image
 * gr_metadata_image_equal to this one. The frames are handed out one by
 * one because each is the value of its own log record. Returns 0, the
 * emitter's non-zero return, or GR_METADATA_ERR_NOMEM.
 */
int gr_metadata_image_write(const gr_metadata_image *img, gr_metadata_emit_fn emit, void *ctx);

/* Same contents (the last applied position is not compared). */
bool gr_metadata_image_equal(const gr_metadata_image *a, const gr_metadata_image *b);

#endif
