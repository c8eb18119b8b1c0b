/* offset_reset.c - see offset_reset.h. */
#include "tools/offset_reset.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int64_t gr_reset_target(gr_reset_mode mode, int64_t arg, const gr_reset_partition *p)
{
    switch (mode) {
    case GR_RESET_EARLIEST: return p->log_start;
    case GR_RESET_LATEST: return p->log_end;
    case GR_RESET_TO_OFFSET: return clamp(arg, p->log_start, p->log_end);
    case GR_RESET_SHIFT_BY:
        if (p->committed < 0)
            return -1;
        /* Saturate rather than overflow on absurd shifts. */
        if (arg > 0 && p->committed > INT64_MAX - arg)
            return p->log_end;
        return clamp(p->committed + arg, p->log_start, p->log_end);
    case GR_RESET_TO_DATETIME: return p->by_time >= 0 ? p->by_time : p->log_end;
    default: return -1;
    }
}

/* n digits at *s into *out; advances *s. */
static bool digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return false;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return true;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool gr_reset_parse_datetime(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (!s || !digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return false;
    if (*s == 'T' || *s == 't') {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi))
            return false;
        if (*s == ':') {
            s++;
            if (!digits(&s, 2, &sec))
                return false;
            if (*s == '.' || *s == ',') {
                s++;
                int n = 0;
                for (; isdigit((unsigned char)*s); s++, n++)
                    if (n < 3)
                        frac_ms = frac_ms * 10 + (*s - '0');
                if (n == 0)
                    return false;
                for (; n < 3; n++)
                    frac_ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return false;
    }
    int64_t local = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec);
    if (*s == '\0') {
        /* No zone: the local time, as Java's default time zone would read it. */
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                        .tm_min = mi, .tm_sec = sec, .tm_isdst = -1};
        time_t t = mktime(&tm);
        if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31))
            return false;
        *ms = (int64_t)t * 1000 + frac_ms;
        return true;
    }
    int off = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om = 0;
        if (!digits(&s, 2, &oh))
            return false;
        if (*s == ':')
            s++;
        if (*s && !digits(&s, 2, &om))
            return false;
        if (oh > 18 || om > 59)
            return false;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*s)
        return false;
    *ms = (local - off) * 1000 + frac_ms;
    return true;
}
