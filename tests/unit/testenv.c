/*
 * testenv.c - scratch directories and captured stderr for the unit suites.
 */
#include "tests/unit/testenv.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int saved_stderr = -1;

void gr_test_mkdtemp(char *buf, size_t len, const char *tag)
{
    int n = snprintf(buf, len, "/tmp/gr%sXXXXXX", tag);
    ck_assert(n > 0 && (size_t)n < len);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void gr_test_rmtree(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void gr_test_capture_stderr(void)
{
    char path[] = "/tmp/grstderrXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

void gr_test_release_stderr(void)
{
    if (saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
}

int gr_test_logged(const char *s)
{
    static char buf[1 << 18];
    fflush(stderr);
    ssize_t n = pread(STDERR_FILENO, buf, sizeof buf - 1, 0);
    if (n < 0)
        return 0;
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, s)) != NULL; p += strlen(s))
        count++;
    return count;
}
