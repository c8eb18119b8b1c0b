/*
 * log_bench.c - partition log throughput against the raw disk, same run.
 *
 *   log_bench [MiB [dir]]      defaults: 1024 MiB in build/ (the repository's
 *                              filesystem; tmpfs is refused, it would
 *                              measure memory)
 *
 * Four measurements over the same volume:
 *   raw write    write(2) of 16 KiB chunks to one file, one fsync at the end
 *   log append   gr_log_append of 16 KiB batches (16 records of 1 KiB, header
 *                and CRC validated, offsets assigned), one gr_log_flush at
 *                the end (Kafka's default policy: no fsync before that)
 *   raw read     read(2) of the raw file in 1 MiB chunks
 *   log read     gr_log_read of 1 MiB ranges from offset 0 to the end, each
 *                range pread into a buffer (what sendfile would send)
 * Before each read the files' pages are dropped from the page cache
 * (posix_fadvise DONTNEED after the fsync), so both reads come from the disk.
 * Each is measured twice (raw, log, log, raw) and the better run counts.
 * Prints MB/s for each and the ratios log/raw (the target is >= 80%).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/logging.h"

#define TMPFS_MAGIC_NUMBER 0x01021994
#define RECORD 1024
#define RECORDS_PER_BATCH 16
#define CHUNK (1u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "log_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int remove_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Evicts a file's pages (it has been fsynced, so they are clean), so the
 * read that follows comes from the disk rather than the page cache. */
static int evict_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_F) {
        int fd = open(p, O_RDONLY);
        if (fd >= 0) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    return 0;
}

static double mbps(uint64_t bytes, double secs) { return (double)bytes / 1e6 / secs; }

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
    const char *parent = argc > 2 ? argv[2] : "build";
    if (mib == 0)
        mib = 1;
    mkdir(parent, 0755);
    struct statfs sfs;
    if (statfs(parent, &sfs) != 0)
        die(parent);
    if ((unsigned long)sfs.f_type == TMPFS_MAGIC_NUMBER) {
        fprintf(stderr, "log_bench: %s is tmpfs; give a directory on a disk\n", parent);
        return 1;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/log-bench.XXXXXX", parent);
    if (!mkdtemp(dir))
        die("mkdtemp");
    gr_logging_set_level(GR_LOGGING_WARN);

    /* One 16 KiB batch: 16 records of 1 KiB. */
    static uint8_t value[RECORD];
    for (size_t i = 0; i < sizeof value; i++)
        value[i] = (uint8_t)(i * 31 + 7);
    gr_record_spec rs[RECORDS_PER_BATCH];
    for (int i = 0; i < RECORDS_PER_BATCH; i++)
        rs[i] = (gr_record_spec){.timestamp = 1700000000000LL, .offset_delta = i,
                                 .key = GR_BYTES_NULL, .value = {value, RECORD}};
    gr_batch_spec spec = {.base_offset = 0, .partition_leader_epoch = 0, .codec = GR_CODEC_NONE,
                          .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    gr_writer w;
    gr_writer_init(&w, 20000);
    if (gr_batch_build(&w, &spec, rs, RECORDS_PER_BATCH) != GR_OK)
        die("gr_batch_build");
    size_t blen = w.len;
    uint64_t batches = mib * (1u << 20) / blen;
    uint64_t volume = batches * blen;

    uint8_t *buf = malloc(CHUNK + blen);
    if (!buf)
        die("malloc");
    /* Each measurement runs twice, in the order raw, log, log, raw, and the
     * better figure counts: the disk's own noise (writeback of the previous
     * file) then falls on both sides alike. */
    double raw_write = 1e9, log_append = 1e9, raw_read = 1e9, log_read = 1e9;
    for (int round = 0; round < 4; round++) {
        bool is_log = round == 1 || round == 2;
        char sub[600];
        snprintf(sub, sizeof sub, "%s/%d", dir, round);
        if (mkdir(sub, 0755) != 0)
            die(sub);
        double wt, rt;
        if (!is_log) {
            char raw[700];
            snprintf(raw, sizeof raw, "%s/raw", sub);
            int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                die(raw);
            double t = now_s();
            for (uint64_t i = 0; i < batches; i++)
                if (write(fd, w.p, blen) != (ssize_t)blen)
                    die("write");
            if (fsync(fd) != 0)
                die("fsync");
            wt = now_s() - t;
            close(fd);
            nftw(sub, evict_cb, 16, FTW_PHYS);
            fd = open(raw, O_RDONLY);
            if (fd < 0)
                die(raw);
            uint64_t got = 0;
            t = now_s();
            for (;;) {
                ssize_t r = read(fd, buf, CHUNK);
                if (r < 0)
                    die("read");
                if (r == 0)
                    break;
                got += (uint64_t)r;
            }
            rt = now_s() - t;
            close(fd);
            if (got != volume)
                die("raw read short");
        } else {
            gr_log_config cfg;
            gr_log_config_defaults(&cfg);
            gr_log *log;
            if (gr_log_open(&log, sub, "bench", 0, &cfg, 0) != GR_LOG_OK)
                die("gr_log_open");
            double t = now_s();
            for (uint64_t i = 0; i < batches; i++) {
                gr_log_append_result res;
                if (gr_log_append(log, w.p, blen, 0, 0, 0, 0, &res) != GR_LOG_OK)
                    die("gr_log_append");
            }
            if (gr_log_flush(log, 0) != GR_LOG_OK)
                die("gr_log_flush");
            wt = now_s() - t;
            nftw(sub, evict_cb, 16, FTW_PHYS);
            uint64_t got = 0;
            int64_t off = 0, end = gr_log_end_offset(log);
            t = now_s();
            while (off < end) {
                gr_log_read_result r;
                if (gr_log_read(log, off, CHUNK, INT64_MAX, &r) != GR_LOG_OK || r.length == 0)
                    die("gr_log_read");
                if (pread(r.fd, buf, r.length, r.position) != (ssize_t)r.length)
                    die("pread");
                got += r.length;
                off += (int64_t)(r.length / blen) * RECORDS_PER_BATCH;
                gr_log_read_release(&r);
            }
            rt = now_s() - t;
            if (got != volume)
                die("log read short");
            gr_log_close(log, 0);
        }
        double *bw = is_log ? &log_append : &raw_write, *br = is_log ? &log_read : &raw_read;
        if (wt < *bw)
            *bw = wt;
        if (rt < *br)
            *br = rt;
        nftw(sub, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    }

    printf("log bench: %" PRIu64 " MiB in %zu-byte batches of %d x %d-byte records, in %s\n",
           volume >> 20, blen, RECORDS_PER_BATCH, RECORD, parent);
    printf("  raw write  %8.1f MB/s   (write 16 KiB chunks + fsync)\n", mbps(volume, raw_write));
    printf("  log append %8.1f MB/s   (%.0f%% of raw write)\n", mbps(volume, log_append),
           100.0 * raw_write / log_append);
    printf("  raw read   %8.1f MB/s   (read 1 MiB chunks, page cache dropped first)\n",
           mbps(volume, raw_read));
    printf("  log read   %8.1f MB/s   (%.0f%% of raw read)\n", mbps(volume, log_read),
           100.0 * raw_read / log_read);
    free(buf);
    gr_writer_free(&w);
    nftw(dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
