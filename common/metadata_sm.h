/*
 * metadata_sm.h - the metadata image as the state machine behind a quorum.
 *
 * Controllers and brokers follow the same metadata log and keep the same
 * image of it: committed entries (mdentry.h batches of records) are applied
 * in log order, a snapshot is the image written out as one such batch, and
 * loading a snapshot replaces the image. This module provides those three
 * gr_quorum_sm callbacks over a gr_metadata_image, with hooks for what each
 * binary does on top (the controller answers requests waiting for their
 * entries to commit; the broker reacts to new leaders).
 */
#ifndef GR_METADATA_SM_H
#define GR_METADATA_SM_H

#include <pthread.h>

#include "common/metadata.h"
#include "common/quorum.h"

typedef struct {
    gr_metadata_image *img; /* the committed image; replaced on snapshot load */
    /* When other threads read img (the broker's network threads), they hold
     * this for reading; applying and reloading hold it for writing. */
    pthread_rwlock_t *lock;
    void *ctx;
    /* After each committed entry is applied (optional). */
    void (*applied)(void *ctx, int64_t offset);
    /* After the image was replaced by a snapshot (optional). */
    void (*reloaded)(void *ctx);
    /* Role changes of the quorum (optional). */
    void (*role)(void *ctx, gr_raft_role role, int32_t epoch, int32_t leader_id);
} gr_metadata_sm;

/* The quorum callbacks over sm (which must outlive the quorum). */
gr_quorum_sm gr_metadata_sm_callbacks(gr_metadata_sm *sm);

/* The whole image as one entry (the snapshot format). 0 or -1. */
int gr_metadata_image_to_entry(const gr_metadata_image *img, gr_writer *w);
/* A new image from such an entry; NULL if it does not apply. */
gr_metadata_image *gr_metadata_image_from_entry(const uint8_t *data, size_t len);

#endif
