/*
 * metaprops.h - the meta.properties file of a storage directory.
 *
 * Like Kafka's, every log directory holds a meta.properties naming the
 * cluster it belongs to and the node that owns it:
 *
 *     version=1
 *     cluster.id=<22-character base64url uuid>
 *     node.id=1
 *
 * A directory without one is new: it gets a fresh cluster id (or the one
 * given) and the file is written atomically. A directory that belongs to a
 * different node id is refused, so that two nodes never share storage.
 */
#ifndef GR_METAPROPS_H
#define GR_METAPROPS_H

#include <stddef.h>
#include <stdint.h>

#define GR_CLUSTER_ID_MAX 64

/* Loads or creates <dir>/meta.properties. cluster_id is in/out: if it is
 * empty and the file does not exist, a new id is generated. Returns 0 or -1
 * after logging why. */
int gr_metaprops_ensure(const char *dir, int32_t node_id, char cluster_id[GR_CLUSTER_ID_MAX]);

/* Writes path atomically: temp file, fsync, rename, fsync of the directory. */
int gr_write_file_atomic(const char *path, const void *data, size_t len);

/* The cluster id a node uses when its storage is new: `configured` (the
 * cluster.id setting, playing the part of kafka-storage format's
 * --cluster-id) if set, else one derived from controller.quorum.voters, so
 * that every node configured with the same quorum agrees without a separate
 * format step. out gets "" when neither is set (a fresh random id is then
 * made by gr_metaprops_ensure). */
void gr_cluster_id_default(const char *configured, const char *voters,
                           char out[GR_CLUSTER_ID_MAX]);

/* 16 bytes as Kafka prints uuids: 22 characters of unpadded base64url. */
void gr_uuid_base64(const uint8_t b[16], char out[23]);

/* A random uuid as Kafka prints it: 22 characters of unpadded base64url. */
void gr_uuid_random_base64(char out[23]);

#endif
