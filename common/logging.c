/* logging.c - see logging.h. */
#include "common/logging.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = GR_LOGGING_INFO;

void gr_logging_set_level(gr_logging_level level) { atomic_store(&g_level, (int)level); }
gr_logging_level gr_logging_get_level(void) { return (gr_logging_level)atomic_load(&g_level); }

int gr_logging_parse_level(const char *s)
{
    static const struct {
        const char *name;
        gr_logging_level level;
    } names[] = {{"debug", GR_LOGGING_DEBUG}, {"trace", GR_LOGGING_DEBUG}, {"info", GR_LOGGING_INFO},
                 {"warn", GR_LOGGING_WARN},   {"warning", GR_LOGGING_WARN}, {"error", GR_LOGGING_ERROR}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return (int)names[i].level;
    return -1;
}

void gr_logging_write(gr_logging_level level, const char *subsystem, const char *fmt, ...)
{
    static const char *const tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if ((int)level < atomic_load(&g_level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, tags[level], subsystem);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
