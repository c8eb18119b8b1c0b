/* metaprops.c - see metaprops.h. */
#include "common/metaprops.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/logging.h"

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

int gr_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    char dircopy[4096];
    snprintf(dircopy, sizeof dircopy, "%s", path);
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

void gr_uuid_random_base64(char out[23])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        for (size_t i = 0; i < sizeof b; i++) /* getrandom cannot fail for 16 bytes after boot */
            b[i] = (uint8_t)rand();
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* IETF variant */
    gr_uuid_base64(b, out);
}

void gr_cluster_id_default(const char *configured, const char *voters,
                           char out[GR_CLUSTER_ID_MAX])
{
    out[0] = 0;
    if (configured && configured[0]) {
        snprintf(out, GR_CLUSTER_ID_MAX, "%s", configured);
    } else if (voters && voters[0]) {
        /* Four CRC-32Cs of the voter list with different seeds: not a
         * secret, just the same 16 bytes on every node. */
        uint8_t b[16];
        for (uint32_t i = 0; i < 4; i++) {
            uint32_t c = gr_crc32c(0x9e3779b9u * (i + 1), voters, strlen(voters));
            b[4 * i] = (uint8_t)(c >> 24);
            b[4 * i + 1] = (uint8_t)(c >> 16);
            b[4 * i + 2] = (uint8_t)(c >> 8);
            b[4 * i + 3] = (uint8_t)c;
        }
        gr_uuid_base64(b, out);
    }
}

void gr_uuid_base64(const uint8_t b[16], char out[23])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < 16; i++) {
        acc = (acc << 8) | b[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 0x3f];
    out[o] = 0;
}

/* Reads key=value lines; returns 0 if the file exists and parsed. */
static int read_props(const char *path, char *cluster_id, int32_t *node_id, int *found)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *found = 0;
        return errno == ENOENT ? 0 : -1;
    }
    *found = 1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *v = eq + 1;
        if (strcmp(line, "cluster.id") == 0)
            snprintf(cluster_id, GR_CLUSTER_ID_MAX, "%s", v);
        else if (strcmp(line, "node.id") == 0)
            *node_id = (int32_t)strtol(v, NULL, 10);
    }
    fclose(f);
    return 0;
}

int gr_metaprops_ensure(const char *dir, int32_t node_id, char cluster_id[GR_CLUSTER_ID_MAX])
{
    if (mkdir_p(dir) != 0) {
        GR_ERROR("storage", "cannot create log directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.properties", dir);
    char stored[GR_CLUSTER_ID_MAX] = "";
    int32_t stored_node = -1;
    int found = 0;
    if (read_props(path, stored, &stored_node, &found) != 0) {
        GR_ERROR("storage", "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (found) {
        if (stored_node != node_id) {
            GR_ERROR("storage", "%s belongs to node.id=%d, not node.id=%d", path, stored_node,
                     node_id);
            return -1;
        }
        if (stored[0] == 0) {
            GR_ERROR("storage", "%s has no cluster.id", path);
            return -1;
        }
        if (cluster_id[0] && strcmp(cluster_id, stored) != 0) {
            GR_ERROR("storage", "%s belongs to cluster %s, not %s", path, stored, cluster_id);
            return -1;
        }
        snprintf(cluster_id, GR_CLUSTER_ID_MAX, "%s", stored);
        return 0;
    }
    if (cluster_id[0] == 0)
        gr_uuid_random_base64(cluster_id);
    char body[256];
    int n = snprintf(body, sizeof body, "#\n#Written by gregor\nversion=1\ncluster.id=%s\nnode.id=%d\n",
                     cluster_id, node_id);
    if (gr_write_file_atomic(path, body, (size_t)n) != 0) {
        GR_ERROR("storage", "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    GR_INFO("storage", "formatted %s for cluster %s node %d", dir, cluster_id, node_id);
    return 0;
}
