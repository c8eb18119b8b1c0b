/*
 * checkpoint.c - see checkpoint.h.
 *
 * Reading slurps the whole file (they are tiny; the size is capped) and
 * parses it line by line with strict rules: every line ends in '\n', numbers
 * are plain decimal without leading '+' or spaces, fields are separated by
 * exactly one space, and nothing follows the last entry.
 */
#include "common/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/metaprops.h"

#define MAX_FILE (16u << 20) /* far more than any real checkpoint */

/* Reads the whole file into a NUL-terminated heap buffer. */
static int slurp(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? GR_CHECKPOINT_ABSENT : GR_CHECKPOINT_IO;
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return GR_CHECKPOINT_IO;
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= MAX_FILE) {
                free(buf);
                close(fd);
                return GR_CHECKPOINT_CORRUPT;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return GR_CHECKPOINT_IO;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            close(fd);
            return GR_CHECKPOINT_IO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return GR_CHECKPOINT_OK;
}

/* Cuts the next '\n'-terminated line off *cur; false if none is complete. */
static bool next_line(char **cur, char *end, char **line)
{
    char *nl = memchr(*cur, '\n', (size_t)(end - *cur));
    if (!nl)
        return false;
    *nl = '\0';
    *line = *cur;
    *cur = nl + 1;
    return true;
}

/* A strict decimal int64 ending at a space or the end of the field. */
static bool parse_i64(const char **s, int64_t *v)
{
    const char *p = *s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t acc = 0;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (acc > ((uint64_t)INT64_MAX + (neg ? 1 : 0) - d) / 10)
            return false;
        acc = acc * 10 + d;
        p++;
    }
    if (*p != '\0' && *p != ' ')
        return false;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    *s = p;
    return true;
}

static bool expect_space(const char **s)
{
    if (**s != ' ')
        return false;
    (*s)++;
    return true;
}

/* Parses the version and count lines; *count is checked against the bytes
 * left (an entry line has at least 4 bytes) before anyone allocates. */
static int parse_preamble(char **cur, char *end, size_t *count)
{
    char *line;
    int64_t v;
    const char *s;
    if (!next_line(cur, end, &line))
        return GR_CHECKPOINT_CORRUPT;
    s = line;
    if (!parse_i64(&s, &v) || *s || v != GR_CHECKPOINT_VERSION)
        return GR_CHECKPOINT_CORRUPT;
    if (!next_line(cur, end, &line))
        return GR_CHECKPOINT_CORRUPT;
    s = line;
    if (!parse_i64(&s, &v) || *s || v < 0 || (uint64_t)v > (uint64_t)(end - *cur) / 4)
        return GR_CHECKPOINT_CORRUPT;
    *count = (size_t)v;
    return GR_CHECKPOINT_OK;
}

int gr_checkpoint_read_pairs(const char *path, gr_checkpoint_pair **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char *buf;
    size_t len;
    int rc = slurp(path, &buf, &len);
    if (rc != GR_CHECKPOINT_OK)
        return rc;
    char *cur = buf, *end = buf + len, *line;
    size_t count = 0;
    gr_checkpoint_pair *pairs = NULL;
    rc = parse_preamble(&cur, end, &count);
    if (rc == GR_CHECKPOINT_OK && count > 0) {
        pairs = calloc(count, sizeof *pairs);
        if (!pairs)
            rc = GR_CHECKPOINT_IO;
    }
    for (size_t i = 0; rc == GR_CHECKPOINT_OK && i < count; i++) {
        const char *s;
        if (!next_line(&cur, end, &line)) {
            rc = GR_CHECKPOINT_CORRUPT;
            break;
        }
        s = line;
        if (!parse_i64(&s, &pairs[i].a) || !expect_space(&s) || !parse_i64(&s, &pairs[i].b) || *s)
            rc = GR_CHECKPOINT_CORRUPT;
    }
    if (rc == GR_CHECKPOINT_OK && cur != end)
        rc = GR_CHECKPOINT_CORRUPT; /* more than `count` lines, or a torn extra line */
    free(buf);
    if (rc != GR_CHECKPOINT_OK) {
        free(pairs);
        return rc;
    }
    *out = pairs;
    *n = count;
    return GR_CHECKPOINT_OK;
}

int gr_checkpoint_write_pairs(const char *path, const gr_checkpoint_pair *pairs, size_t n)
{
    gr_writer w;
    gr_writer_init(&w, 64 + n * 42);
    char line[64];
    int k = snprintf(line, sizeof line, "%d\n%zu\n", GR_CHECKPOINT_VERSION, n);
    gr_write_raw(&w, line, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        k = snprintf(line, sizeof line, "%" PRId64 " %" PRId64 "\n", pairs[i].a, pairs[i].b);
        gr_write_raw(&w, line, (size_t)k);
    }
    if (!gr_writer_ok(&w)) {
        gr_writer_free(&w);
        errno = ENOMEM;
        return -1;
    }
    int rc = gr_write_file_atomic(path, w.p, w.len);
    gr_writer_free(&w);
    return rc;
}

int gr_checkpoint_write_offset(const char *path, const char *topic, int32_t partition,
                               int64_t offset)
{
    size_t cap = strlen(topic) + 64;
    char *buf = malloc(cap);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int k = snprintf(buf, cap, "%d\n1\n%s %" PRId32 " %" PRId64 "\n", GR_CHECKPOINT_VERSION, topic,
                     partition, offset);
    int rc = gr_write_file_atomic(path, buf, (size_t)k);
    free(buf);
    return rc;
}

int gr_checkpoint_read_offset(const char *path, const char *topic, int32_t partition,
                              int64_t *offset)
{
    char *buf;
    size_t len;
    int rc = slurp(path, &buf, &len);
    if (rc != GR_CHECKPOINT_OK)
        return rc;
    char *cur = buf, *end = buf + len, *line;
    size_t count = 0;
    rc = parse_preamble(&cur, end, &count);
    if (rc == GR_CHECKPOINT_OK && (count != 1 || !next_line(&cur, end, &line) || cur != end))
        rc = GR_CHECKPOINT_CORRUPT;
    if (rc == GR_CHECKPOINT_OK) {
        /* "topic partition offset": topic names cannot contain spaces. */
        size_t tl = strlen(topic);
        const char *s = line + tl;
        int64_t p, o;
        if (strncmp(line, topic, tl) != 0 || !expect_space(&s) || !parse_i64(&s, &p) ||
            !expect_space(&s) || !parse_i64(&s, &o) || *s || p != partition)
            rc = GR_CHECKPOINT_CORRUPT;
        else
            *offset = o;
    }
    free(buf);
    return rc;
}
