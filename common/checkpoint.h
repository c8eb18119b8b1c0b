/*
 * checkpoint.h - the small text checkpoint files of a partition directory.
 *
 * They use Kafka's checkpoint format: a version line ("0"), a count line,
 * then `count` entry lines of space-separated fields, each line ending in
 * '\n':
 *
 *   leader-epoch-checkpoint           entries "epoch startOffset"
 *   recovery-point-offset-checkpoint  entries "topic partition offset"
 *   log-start-offset-checkpoint       entries "topic partition offset"
 *
 * Kafka keeps the last two per log directory, one line per partition. Gregor
 * keeps them per partition directory (one line each, same format), so that a
 * partition's log never rewrites a file another partition also owns and
 * needs no directory-wide lock; the cost is one small file each per
 * partition.
 *
 * Files are written with gr_write_file_atomic (temp file, fsync, rename,
 * fsync of the directory), so a reader sees the old or the new file, never a
 * mix; a leftover "<name>.tmp" from a crash mid-write is never read (the log
 * removes them on open). The format carries no checksum (it is Kafka's), so
 * a file damaged some other way is detected structurally: wrong version,
 * count disagreeing with the lines present, a line with the wrong number of
 * fields or a field that is not a number, a missing final newline. Such a
 * file is reported as corrupt, never half-read.
 */
#ifndef GR_CHECKPOINT_H
#define GR_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define GR_CHECKPOINT_VERSION 0

/* Results of the readers. */
enum {
    GR_CHECKPOINT_OK = 0,
    GR_CHECKPOINT_ABSENT = 1,   /* no such file */
    GR_CHECKPOINT_CORRUPT = -1, /* present but malformed (reason logged by the caller) */
    GR_CHECKPOINT_IO = -2,      /* could not be read */
};

/* Entries of two numbers: leader epochs (epoch, start offset), and the
 * manifest of a segment replacement (see log.c). */
typedef struct {
    int64_t a;
    int64_t b;
} gr_checkpoint_pair;

/* Writes/reads a file of pair entries. The reader allocates *out (free());
 * *out is NULL when there are no entries. */
int gr_checkpoint_write_pairs(const char *path, const gr_checkpoint_pair *pairs, size_t n);
int gr_checkpoint_read_pairs(const char *path, gr_checkpoint_pair **out, size_t *n);

/* A file with the single entry "topic partition offset". Reading checks that
 * the entry names this topic-partition. */
int gr_checkpoint_write_offset(const char *path, const char *topic, int32_t partition,
                               int64_t offset);
int gr_checkpoint_read_offset(const char *path, const char *topic, int32_t partition,
                              int64_t *offset);

#endif
