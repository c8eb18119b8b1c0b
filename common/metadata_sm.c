/* metadata_sm.c - see metadata_sm.h. */
#include "common/metadata_sm.h"

#include "common/logging.h"
#include "common/mdentry.h"

static int emit_frame(void *ctx, const uint8_t *frame, size_t len)
{
    gr_writer *w = ctx;
    gr_write_uvarint(w, (uint32_t)len);
    gr_write_raw(w, frame, len);
    return gr_writer_ok(w) ? 0 : -1;
}

int gr_metadata_image_to_entry(const gr_metadata_image *img, gr_writer *w)
{
    return gr_metadata_image_write(img, emit_frame, w) == 0 && gr_writer_ok(w) ? 0 : -1;
}

gr_metadata_image *gr_metadata_image_from_entry(const uint8_t *data, size_t len)
{
    gr_metadata_image *img = gr_metadata_image_new();
    if (img && len > 0 && gr_mdentry_apply(img, data, len, -1, -1) != 0) {
        gr_metadata_image_free(img);
        return NULL;
    }
    return img;
}

static void sm_apply(void *ctx, int64_t offset, int32_t epoch, const uint8_t *data, size_t len)
{
    gr_metadata_sm *sm = ctx;
    if (sm->lock)
        pthread_rwlock_wrlock(sm->lock);
    int rc = gr_mdentry_apply(sm->img, data, len, offset, epoch);
    if (sm->lock)
        pthread_rwlock_unlock(sm->lock);
    if (rc != 0)
        /* Every replica refuses the same entry the same way, so images stay
         * equal; the entry is skipped and the reason logged. */
        GR_ERROR("metadata", "entry at offset %lld does not apply: %s", (long long)offset,
                 gr_metadata_err_str(rc));
    if (sm->applied)
        sm->applied(sm->ctx, offset);
}

static void sm_role(void *ctx, gr_raft_role role, int32_t epoch, int32_t leader_id)
{
    gr_metadata_sm *sm = ctx;
    if (sm->role)
        sm->role(sm->ctx, role, epoch, leader_id);
}

static int sm_snapshot_write(void *ctx, gr_writer *w)
{
    gr_metadata_sm *sm = ctx;
    return gr_metadata_image_to_entry(sm->img, w);
}

static int sm_snapshot_load(void *ctx, const uint8_t *data, size_t len)
{
    gr_metadata_sm *sm = ctx;
    gr_metadata_image *img = gr_metadata_image_from_entry(data, len);
    if (!img)
        return -1;
    if (sm->lock)
        pthread_rwlock_wrlock(sm->lock);
    gr_metadata_image *old = sm->img;
    sm->img = img;
    if (sm->lock)
        pthread_rwlock_unlock(sm->lock);
    gr_metadata_image_free(old);
    if (sm->reloaded)
        sm->reloaded(sm->ctx);
    return 0;
}

gr_quorum_sm gr_metadata_sm_callbacks(gr_metadata_sm *sm)
{
    return (gr_quorum_sm){.ctx = sm,
                          .apply = sm_apply,
                          .role = sm_role,
                          .snapshot_write = sm_snapshot_write,
                          .snapshot_load = sm_snapshot_load};
}
