/*
 * logging.h - leveled, timestamped logging: one line per event on stderr.
 *
 *   2026-11-23T02:54:38.123Z INFO  [net] listening on PLAINTEXT://127.0.0.1:9092
 *
 * Each line names its subsystem and the ids that matter for the event
 * (topic, partition, epoch, node, peer). Lines are written with a single
 * write(2) so that lines from different threads never interleave.
 */
#ifndef GR_LOGGING_H
#define GR_LOGGING_H

typedef enum {
    GR_LOGGING_DEBUG,
    GR_LOGGING_INFO,
    GR_LOGGING_WARN,
    GR_LOGGING_ERROR
} gr_logging_level;

void gr_logging_set_level(gr_logging_level level);
gr_logging_level gr_logging_get_level(void);
/* Parses "debug", "info", "warn"/"warning", "error" (any case). -1 if unknown. */
int gr_logging_parse_level(const char *s);

void gr_logging_write(gr_logging_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define GR_DEBUG(sub, ...)                                                                         \
    do {                                                                                           \
        if (gr_logging_get_level() <= GR_LOGGING_DEBUG)                                            \
            gr_logging_write(GR_LOGGING_DEBUG, sub, __VA_ARGS__);                                  \
    } while (0)
#define GR_INFO(sub, ...) gr_logging_write(GR_LOGGING_INFO, sub, __VA_ARGS__)
#define GR_WARN(sub, ...) gr_logging_write(GR_LOGGING_WARN, sub, __VA_ARGS__)
#define GR_ERROR(sub, ...) gr_logging_write(GR_LOGGING_ERROR, sub, __VA_ARGS__)

#endif
