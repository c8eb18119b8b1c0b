/*
 * log_crash.c - kill -9 recovery test of the partition log (common/log.c).
 *
 *   log_crash [kills [seed [dir]]]     defaults: 50 kills, seed from the clock,
 *                                      a fresh directory under build/
 *
 * Each round forks a writer that opens the log (recovering it), appends
 * batches built with gr_batch_build whose record values are a function of
 * their offsets, runs retention now and then, and every few appends flushes
 * and only then records the flushed log end offset in a side file. The
 * parent SIGKILLs it after a random delay, then reopens the log itself and
 * checks that
 *   - it opens;
 *   - every offset below the last recorded flush is still there, and every
 *     batch from the log start to the log end is whole, passes full
 *     validation and carries the values of its offsets (no partial batch is
 *     ever returned, offsets are contiguous);
 *   - every offset index and time index entry points at a batch boundary
 *     whose base offset is the entry's offset.
 * Some rounds first damage the files as a disk might: a flipped byte in the
 * last (unflushed) batch of the active segment, which recovery must cut at
 * exactly that batch, or garbage in the middle of an index file, which it
 * must rebuild. The parent closes the log cleanly in half of the rounds and
 * abandons it (a second crash) in the others.
 *
 * Prints "crash test: N kills, N recoveries ok, M batches verified" and
 * exits non-zero on the first failure, with the seed to reproduce it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/logging.h"
#include "common/segment.h"

#define T0 1700000000000LL
#define FLUSH_EVERY 16

static char root[256];
static char pdir[512];
static char side[512];
static uint64_t seed;
static FILE *report; /* the real stderr: the log module's lines go to /dev/null */

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    FILE *f = report ? report : stderr;
    fprintf(f, "crash test FAILED (seed %" PRIu64 ", dir %s): ", seed, root);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
    va_end(ap);
    exit(1);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void value_for(int64_t offset, uint8_t *v, size_t n)
{
    uint64_t x = (uint64_t)offset * 0x9E3779B97F4A7C15ULL + 7;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (uint8_t)x;
    }
}

static size_t value_size(int64_t offset) { return 20 + (size_t)((uint64_t)offset * 2654435761u % 900); }

static gr_log_config config(void)
{
    gr_log_config c;
    gr_log_config_defaults(&c);
    c.segment_bytes = 256 * 1024;
    c.segment_index_bytes = 64 * 1024;
    c.index_interval_bytes = 2048;
    c.retention_ms = -1;
    c.retention_bytes = 3 * 1024 * 1024;
    c.file_delete_delay_ms = 50;
    return c;
}

/* ---- the writer (child) ---- */

static void record_flushed(int64_t offset)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", side);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%" PRId64 "\n", offset) < 0 || fclose(f) != 0 || rename(tmp, side) != 0)
        _exit(3);
}

static void writer(uint64_t wseed)
{
    rng_state = wseed | 1;
    gr_log_config c = config();
    gr_log *log;
    int64_t now = T0;
    if (gr_log_open(&log, root, "crash", 0, &c, now) != GR_LOG_OK)
        _exit(2);
    gr_record_spec rs[8];
    uint8_t *vals = malloc(8 * 1024);
    if (!vals)
        _exit(2);
    for (unsigned n = 0;; n++) {
        int64_t base = gr_log_end_offset(log);
        int count = 1 + (int)(rnd() % 8);
        size_t at = 0;
        for (int i = 0; i < count; i++) {
            size_t vs = value_size(base + i);
            value_for(base + i, vals + at, vs);
            rs[i] = (gr_record_spec){.timestamp = now, .offset_delta = i, .key = GR_BYTES_NULL,
                                     .value = {vals + at, (int32_t)vs}};
            at += vs;
        }
        gr_batch_spec spec = {.base_offset = 0, .partition_leader_epoch = -1, .codec = GR_CODEC_NONE,
                              .producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
        gr_writer w;
        gr_writer_init(&w, at + 256);
        if (gr_batch_build(&w, &spec, rs, count) != GR_OK)
            _exit(2);
        gr_log_append_result res;
        if (gr_log_append(log, w.p, w.len, 1, 0, 0, now, &res) != GR_LOG_OK || res.first_offset != base)
            _exit(4);
        gr_writer_free(&w);
        now += 1;
        if (n % FLUSH_EVERY == FLUSH_EVERY - 1) {
            if (gr_log_flush(log, now) != GR_LOG_OK)
                _exit(5);
            record_flushed(gr_log_end_offset(log)); /* only after the fsync returned */
        }
        if (n % 64 == 63) {
            gr_log_retention(log, now, INT64_MAX, NULL);
            gr_log_tick(log, now + 100);
        }
    }
}

/* ---- the checks (parent) ---- */

static int64_t read_flushed(void)
{
    FILE *f = fopen(side, "r");
    if (!f)
        return 0;
    int64_t v = 0;
    if (fscanf(f, "%" SCNd64, &v) != 1)
        fail("side file unreadable");
    fclose(f);
    return v;
}

static uint64_t batches_verified;
static int tails_cut, indexes_hit;

/* Every batch of the range: whole, valid, values matching offsets. */
static int64_t verify_range(const gr_log_read_result *r, int64_t expect)
{
    uint8_t *buf = malloc(r->length);
    if (!buf)
        fail("out of memory");
    if (pread(r->fd, buf, r->length, r->position) != (ssize_t)r->length)
        fail("short pread of a read range");
    for (size_t at = 0; at < r->length;) {
        gr_batch_header h;
        gr_batch_result br = gr_batch_parse_header(buf + at, r->length - at, &h);
        if (br != GR_BATCH_OK)
            fail("partial or malformed batch at offset %" PRId64 ": %s", expect, gr_batch_result_str(br));
        br = gr_batch_validate(buf + at, gr_batch_size(&h), true, 1 << 20, &h);
        if (br != GR_BATCH_OK)
            fail("invalid batch at offset %" PRId64 ": %s", h.base_offset, gr_batch_result_str(br));
        if (h.base_offset > expect || gr_batch_last_offset(&h) < expect)
            fail("expected offset %" PRId64 ", got batch %" PRId64 "-%" PRId64, expect, h.base_offset,
                 gr_batch_last_offset(&h));
        gr_record_iter it;
        if (gr_record_iter_init(&it, buf + at, gr_batch_size(&h), 1 << 20) != GR_BATCH_OK)
            fail("records of batch %" PRId64 " unreadable", h.base_offset);
        gr_record rec;
        gr_batch_result err;
        uint8_t want[1024];
        while (gr_record_iter_next(&it, &rec, &err) == 1) {
            int64_t o = h.base_offset + rec.offset_delta;
            size_t vs = value_size(o);
            value_for(o, want, vs);
            if ((size_t)rec.value.len != vs || memcmp(want, rec.value.ptr, vs) != 0)
                fail("payload of offset %" PRId64 " differs", o);
        }
        gr_record_iter_free(&it);
        batches_verified++;
        expect = gr_batch_last_offset(&h) + 1;
        at += gr_batch_size(&h);
    }
    free(buf);
    return expect;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Entries of an index file up to the first all-zero one (preallocation). */
static int check_index_file(const char *name, int64_t base, bool time)
{
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/%s", pdir, name);
    if (!gr_segment_filename(lp, sizeof lp, pdir, base, ".log"))
        fail("path too long");
    int ifd = open(ip, O_RDONLY), lfd = open(lp, O_RDONLY);
    if (ifd < 0 || lfd < 0)
        fail("cannot open %s or its log", name);
    size_t es = time ? 12 : 8;
    uint8_t e[12];
    int n = 0;
    for (off_t at = 0; pread(ifd, e, es, at) == (ssize_t)es; at += (off_t)es) {
        bool zero = true;
        for (size_t i = 0; i < es; i++)
            zero &= e[i] == 0;
        if (zero)
            break;
        int64_t off = base + (int32_t)be32(time ? e + 8 : e);
        off_t pos;
        if (time) {
            /* a time entry names a batch by base offset: find it by walking */
            pos = -1;
            uint8_t h[GR_BATCH_HEADER_SIZE];
            for (off_t p = 0; pread(lfd, h, sizeof h, p) == (ssize_t)sizeof h;) {
                gr_batch_header bh;
                if (gr_batch_parse_header(h, 1u << 30, &bh) != GR_BATCH_OK)
                    break;
                if (bh.base_offset == off) {
                    pos = p;
                    break;
                }
                p += (off_t)gr_batch_size(&bh);
            }
            if (pos < 0)
                fail("%s: time index entry %d names offset %" PRId64 ", not a batch", name, n, off);
        } else {
            pos = (off_t)be32(e + 4);
            uint8_t h[GR_BATCH_HEADER_SIZE];
            gr_batch_header bh;
            if (pread(lfd, h, sizeof h, pos) != (ssize_t)sizeof h ||
                gr_batch_parse_header(h, 1u << 30, &bh) != GR_BATCH_OK || bh.base_offset != off)
                fail("%s: entry %d (%" PRId64 " -> %lld) is not a batch boundary with that offset", name,
                     n, off, (long long)pos);
        }
        n++;
    }
    close(ifd);
    close(lfd);
    return n;
}

static void check_indexes(void)
{
    DIR *d = opendir(pdir);
    if (!d)
        fail("cannot list %s", pdir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        char *end;
        int64_t base = strtoll(de->d_name, &end, 10);
        if (end != de->d_name + 20)
            continue;
        if (l == 26 && strcmp(end, ".index") == 0)
            check_index_file(de->d_name, base, false);
        else if (l == 30 && strcmp(end, ".timeindex") == 0)
            check_index_file(de->d_name, base, true);
    }
    closedir(d);
}

/* Base offset and position of the last batch of the newest segment. */
static bool last_batch(int64_t *seg_base, int64_t *batch_base, off_t *pos, size_t *size)
{
    DIR *d = opendir(pdir);
    struct dirent *de;
    int64_t newest = -1;
    while (d && (de = readdir(d)) != NULL) {
        char *end;
        int64_t b = strtoll(de->d_name, &end, 10);
        if (end == de->d_name + 20 && strcmp(end, ".log") == 0 && b > newest)
            newest = b;
    }
    if (d)
        closedir(d);
    if (newest < 0)
        return false;
    char lp[1024];
    gr_segment_filename(lp, sizeof lp, pdir, newest, ".log");
    int fd = open(lp, O_RDONLY);
    if (fd < 0)
        return false;
    struct stat st;
    fstat(fd, &st);
    bool found = false;
    uint8_t h[GR_BATCH_HEADER_SIZE];
    for (off_t p = 0; pread(fd, h, sizeof h, p) == (ssize_t)sizeof h;) {
        gr_batch_header bh;
        if (gr_batch_parse_header(h, (size_t)(st.st_size - p), &bh) != GR_BATCH_OK)
            break;
        *seg_base = newest;
        *batch_base = bh.base_offset;
        *pos = p;
        *size = gr_batch_size(&bh);
        found = true;
        p += (off_t)gr_batch_size(&bh);
    }
    close(fd);
    return found;
}

static void flip(const char *path, off_t at, size_t n)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        fail("cannot open %s", path);
    uint8_t b[16];
    if (pread(fd, b, n, at) != (ssize_t)n)
        fail("cannot read %s", path);
    for (size_t i = 0; i < n; i++)
        b[i] = b[i] == 0xA5 ? 0x5A : 0xA5; /* always a change */
    if (pwrite(fd, b, n, at) != (ssize_t)n)
        fail("cannot write %s", path);
    close(fd);
}

/* Damages the files as a disk might. Returns the log end offset recovery
 * must arrive at exactly, or -1 when only "at least the flushed" applies. */
static int64_t damage(int round, int64_t flushed)
{
    char marker[600];
    snprintf(marker, sizeof marker, "%s/.clean-shutdown", pdir);
    if (access(marker, F_OK) == 0)
        return -1; /* killed before its open got going: a clean log, trusted as such */
    if (round % 5 == 2) {
        /* the last batch of the active segment, if nobody was promised it */
        int64_t sb = -1, bb = -1;
        off_t pos = 0;
        size_t size = 0;
        if (last_batch(&sb, &bb, &pos, &size) && bb >= flushed) {
            char lp[1024];
            gr_segment_filename(lp, sizeof lp, pdir, sb, ".log");
            flip(lp, pos + (off_t)size / 2, 1);
            tails_cut++;
            return bb;
        }
    } else if (round % 5 == 4) {
        /* garbage in the middle of some segment's offset index */
        DIR *d = opendir(pdir);
        struct dirent *de;
        char victim[1024] = "";
        off_t best = 0;
        while (d && (de = readdir(d)) != NULL) {
            if (strlen(de->d_name) != 26 || strcmp(de->d_name + 20, ".index") != 0)
                continue;
            char ip[1024];
            snprintf(ip, sizeof ip, "%s/%s", pdir, de->d_name);
            struct stat st;
            /* prefer a trimmed (inactive, below the recovery point) one */
            if (stat(ip, &st) == 0 && st.st_size >= 32 && st.st_size < 64 * 1024 &&
                (rnd() % 2 || !victim[0])) {
                snprintf(victim, sizeof victim, "%s", ip);
                best = st.st_size;
            }
        }
        if (d)
            closedir(d);
        if (victim[0]) {
            flip(victim, best / 16 * 8, 8);
            indexes_hit++;
        }
    }
    return -1;
}

static int remove_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    int kills = argc > 1 ? atoi(argv[1]) : 50;
    seed = argc > 2 ? strtoull(argv[2], NULL, 10) : (uint64_t)time(NULL);
    if (argc > 3) {
        snprintf(root, sizeof root, "%s", argv[3]);
        if (mkdir(root, 0755) != 0 && errno != EEXIST)
            fail("cannot create %s", root);
    } else {
        mkdir("build", 0755);
        snprintf(root, sizeof root, "build/crash-log.XXXXXX");
        if (!mkdtemp(root))
            fail("cannot create a directory under build/");
    }
    snprintf(pdir, sizeof pdir, "%s/crash-0", root);
    snprintf(side, sizeof side, "%s/flushed", root);
    rng_state = seed | 1;
    gr_logging_set_level(GR_LOGGING_WARN);
    if (!getenv("CRASH_VERBOSE")) { /* recovery's warnings are expected here */
        int devnull = open("/dev/null", O_WRONLY);
        int saved = dup(STDERR_FILENO);
        if (saved >= 0)
            report = fdopen(saved, "w");
        if (devnull >= 0) {
            dup2(devnull, STDERR_FILENO);
            close(devnull);
        }
    }
    int recoveries = 0;
    FILE *out = stdout;
    for (int round = 0; round < kills; round++) {
        pid_t pid = fork();
        if (pid < 0)
            fail("fork: %s", strerror(errno));
        if (pid == 0)
            writer(seed * 1000003u + (uint64_t)round);
        struct timespec ts = {0, (long)(5 + rnd() % 60) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status))
            fail("writer exited by itself (status %d) in round %d", WEXITSTATUS(status), round);

        int64_t flushed = read_flushed();
        int64_t exact = damage(round, flushed);
        gr_log_config c = config();
        gr_log *log;
        if (gr_log_open(&log, root, "crash", 0, &c, T0) != GR_LOG_OK)
            fail("round %d: the log does not open", round);
        int64_t lso = gr_log_start_offset(log), leo = gr_log_end_offset(log);
        if (leo < flushed)
            fail("round %d: log end offset %" PRId64 " below the flushed %" PRId64, round, leo, flushed);
        if (exact >= 0 && leo != exact)
            fail("round %d: corrupt batch at %" PRId64 " but the log ends at %" PRId64, round, exact, leo);
        for (int64_t off = lso; off < leo;) {
            gr_log_read_result r;
            if (gr_log_read(log, off, 256 * 1024, INT64_MAX, &r) != GR_LOG_OK || r.length == 0)
                fail("round %d: read at %" PRId64 " failed (log %" PRId64 "-%" PRId64 ")", round, off, lso, leo);
            off = verify_range(&r, off);
            gr_log_read_release(&r);
        }
        check_indexes();
        if (round % 2 == 0) {
            if (gr_log_close(log, T0) != GR_LOG_OK)
                fail("round %d: clean close failed", round);
            check_indexes();
        } else {
            gr_log_abandon(log);
        }
        recoveries++;
    }
    fprintf(out,
            "crash test: %d kills, %d recoveries ok, %" PRIu64 " batches verified "
            "(%d torn tails cut, %d corrupt indexes rebuilt; seed %" PRIu64 ")\n",
            kills, recoveries, batches_verified, tails_cut, indexes_hit, seed);
    /* success: the directory goes (it stays after a failure, for a look) */
    return nftw(root, remove_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : 1;
}
