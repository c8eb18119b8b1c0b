/*
 * config.c - see config.h.
 *
 * Layout: one value slot per definition (same index as the table), plus a
 * small array of unknown keys that were set. A slot owns its text and, for
 * numeric/bool/list types, the parsed form, so getters never parse.
 *
 * Every path that sets a value goes through set_value(), which parses into a
 * scratch slot first and only swaps it in when the whole value is valid and
 * its source has at least the current one's precedence. That makes the load
 * order irrelevant to the outcome and keeps a failed set from destroying the
 * previous value.
 */
#include "common/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/logging.h"

#define SUB "config"
#define ENV_PREFIX "GREGOR_"
/* A properties file larger than this is surely a mistake (a log, a binary). */
#define MAX_FILE_BYTES (16u << 20)

typedef struct {
    char *text; /* owned; NULL when unset and no default */
    gr_config_source src;
    int64_t i; /* INT, LONG */
    double d;  /* DOUBLE */
    bool b;    /* BOOL */
    /* LIST: one allocation holding the NULL-terminated pointer array
     * followed by the item strings it points into. */
    char **items;
    size_t nitems;
} slot;

typedef struct {
    char *key, *text;
    gr_config_source src;
} unknown_kv;

struct gr_config {
    const gr_config_def *defs;
    size_t ndefs;
    slot *slots;
    unknown_kv *unknown;
    size_t nunknown, capunknown;
};

/* ---- small helpers ---- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n' || c == '\v'; }

static void fmt_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies s into out for a log line: control characters escaped, long values
 * cut short, so one value can never break the one-line-per-event rule. */
static const char *printable(const char *s, char *out, size_t outlen)
{
    size_t o = 0; /* outlen is at least 8 at every call site */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (o + 8 > outlen) { /* room for one escape and "..." is gone */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (*p == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return out;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

const char *gr_config_source_name(gr_config_source src)
{
    switch (src) {
    case GR_CFG_SRC_DEFAULT: return "default";
    case GR_CFG_SRC_ENV: return "env";
    case GR_CFG_SRC_FILE: return "file";
    case GR_CFG_SRC_OVERRIDE: return "override";
    }
    return "?";
}

static const char *type_name(gr_config_type t)
{
    switch (t) {
    case GR_CFG_INT: return "int";
    case GR_CFG_LONG: return "long";
    case GR_CFG_BOOL: return "boolean";
    case GR_CFG_STRING: return "string";
    case GR_CFG_LIST: return "list";
    case GR_CFG_DOUBLE: return "double";
    case GR_CFG_PASSWORD: return "password";
    }
    return "?";
}

/* Environment variable name of a key: GREGOR_ + upper case, '.'/'-' -> '_'.
 * Returns false if it does not fit. */
static bool env_name(const char *key, char *out, size_t outlen)
{
    size_t plen = strlen(ENV_PREFIX), klen = strlen(key);
    if (plen + klen + 1 > outlen)
        return false;
    memcpy(out, ENV_PREFIX, plen);
    for (size_t i = 0; i < klen; i++) {
        char ch = key[i];
        if (ch == '.' || ch == '-')
            ch = '_';
        else if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        out[plen + i] = ch;
    }
    out[plen + klen] = '\0';
    return true;
}

static void slot_clear(slot *s)
{
    free(s->text);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* ---- value parsing ---- */

/* Decimal integer with an optional sign, surrounding whitespace allowed (as
 * Kafka trims numbers), within [lo, hi]. Kafka accepts only decimal, so do
 * we: no hex, no octal, no exponent. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out, char *err, size_t errlen)
{
    const char *p = s;
    while (is_ws(*p))
        p++;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9') {
        fmt_err(err, errlen, "not a number");
        return -1;
    }
    /* Accumulate as a negative number: its range includes INT64_MIN. */
    int64_t v = 0;
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        int digit = *p - '0';
        if (v < (INT64_MIN + digit) / 10)
            overflow = true;
        else
            v = v * 10 - digit;
    }
    while (is_ws(*p))
        p++;
    if (*p) {
        fmt_err(err, errlen, "not a number");
        return -1;
    }
    if (!neg) {
        if (v == INT64_MIN)
            overflow = true;
        else
            v = -v;
    }
    if (overflow || v < lo || v > hi) {
        fmt_err(err, errlen, "must be between %lld and %lld", (long long)lo, (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, bool bounded, double *out, char *err,
                        size_t errlen)
{
    const char *p = s;
    while (is_ws(*p))
        p++;
    /* strtod also takes hex floats, "inf" and "nan"; a config value should
     * be a plain finite decimal, so only digits, sign, '.', and exponent. */
    for (const char *q = p; *q && !is_ws(*q); q++) {
        if (!strchr("0123456789+-.eE", *q)) {
            fmt_err(err, errlen, "not a number");
            return -1;
        }
    }
    if (!*p) {
        fmt_err(err, errlen, "not a number");
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p) {
        fmt_err(err, errlen, "not a number");
        return -1;
    }
    while (is_ws(*end))
        end++;
    if (*end) {
        fmt_err(err, errlen, "not a number");
        return -1;
    }
    if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) {
        fmt_err(err, errlen, "out of range");
        return -1;
    }
    if (bounded && (v < lo || v > hi)) {
        fmt_err(err, errlen, "must be between %g and %g", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
    while (is_ws(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_ws(s[n - 1]))
        n--;
    if (n == 4 && strncasecmp(s, "true", 4) == 0)
        *out = true;
    else if (n == 5 && strncasecmp(s, "false", 5) == 0)
        *out = false;
    else {
        fmt_err(err, errlen, "must be true or false");
        return -1;
    }
    return 0;
}

/* Splits a comma-separated list into one allocation (see slot.items).
 * Returns 0, or -2 on allocation failure. */
static int parse_list(const char *s, char ***items, size_t *nitems)
{
    size_t len = strlen(s), n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == ',';
    n++; /* upper bound on item count */
    size_t ptrbytes = (n + 1) * sizeof(char *);
    char **arr = malloc(ptrbytes + len + 1);
    if (!arr)
        return -2;
    char *text = (char *)arr + ptrbytes;
    memcpy(text, s, len + 1);
    size_t count = 0;
    char *p = text;
    for (;;) {
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        char *b = p;
        while (b < end && is_ws(*b))
            b++;
        char *e = end;
        while (e > b && is_ws(e[-1]))
            e--;
        *e = '\0';
        if (e > b)
            arr[count++] = b;
        if (!comma)
            break;
        p = comma + 1;
    }
    arr[count] = NULL;
    *items = arr;
    *nitems = count;
    return 0;
}

/* Parses text for def into out (which it owns afterwards). Returns 0, -1
 * with a reason in err, or -2 on allocation failure. */
static int parse_value(const gr_config_def *def, const char *text, slot *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    bool bounded = !(def->min == 0 && def->max == 0);
    switch (def->type) {
    case GR_CFG_INT: {
        int64_t lo = bounded ? def->min : INT32_MIN, hi = bounded ? def->max : INT32_MAX;
        if (lo < INT32_MIN)
            lo = INT32_MIN;
        if (hi > INT32_MAX)
            hi = INT32_MAX;
        if (parse_int(text, lo, hi, &out->i, err, errlen))
            return -1;
        break;
    }
    case GR_CFG_LONG:
        if (parse_int(text, bounded ? def->min : INT64_MIN, bounded ? def->max : INT64_MAX, &out->i,
                      err, errlen))
            return -1;
        break;
    case GR_CFG_DOUBLE:
        if (parse_double(text, (double)def->min, (double)def->max, bounded, &out->d, err, errlen))
            return -1;
        break;
    case GR_CFG_BOOL:
        if (parse_bool(text, &out->b, err, errlen))
            return -1;
        break;
    case GR_CFG_LIST:
        if (parse_list(text, &out->items, &out->nitems))
            return -2;
        break;
    case GR_CFG_STRING:
    case GR_CFG_PASSWORD:
        break;
    }
    if (def->validate) {
        char verr[256] = "rejected by validator";
        if (def->validate(text, verr, sizeof verr) != 0) {
            fmt_err(err, errlen, "%s", verr);
            slot_clear(out);
            return -1;
        }
    }
    out->text = dup_str(text);
    if (!out->text) {
        slot_clear(out);
        return -2;
    }
    return 0;
}

/* ---- table lookup ---- */

static const gr_config_def *find_def(const gr_config *c, const char *key, size_t *idx)
{
    for (size_t i = 0; i < c->ndefs; i++) {
        if (strcmp(c->defs[i].name, key) == 0) {
            if (idx)
                *idx = i;
            return &c->defs[i];
        }
    }
    return NULL;
}

static void misuse(const char *fmt, const char *key) __attribute__((noreturn));
static void misuse(const char *fmt, const char *key)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, key);
    GR_ERROR(SUB, "programming error: %s", msg);
    abort();
}

/* The slot of a defined key read by a getter for one of the given types. */
static const slot *get_slot(const gr_config *c, const char *key, gr_config_type t1, gr_config_type t2,
                            bool need_value)
{
    size_t idx;
    const gr_config_def *def = find_def(c, key, &idx);
    if (!def)
        misuse("config key '%s' is not defined", key);
    if (def->type != t1 && def->type != t2)
        misuse("config key '%s' read with a getter of the wrong type", key);
    const slot *s = &c->slots[idx];
    if (need_value && !s->text)
        misuse("config key '%s' has no value and no default; check gr_config_is_set first", key);
    return s;
}

/* ---- new / free ---- */

gr_config *gr_config_new(const gr_config_def *defs, size_t ndefs)
{
    for (size_t i = 0; i < ndefs; i++) {
        if (!defs[i].name || !defs[i].name[0])
            misuse("config definition %s has no name", "");
        char ei[256], ej[256];
        if (!env_name(defs[i].name, ei, sizeof ei))
            misuse("config key '%s' is too long", defs[i].name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(defs[i].name, defs[j].name) == 0)
                misuse("config key '%s' is defined twice", defs[i].name);
            if (env_name(defs[j].name, ej, sizeof ej) && strcmp(ei, ej) == 0)
                misuse("config key '%s' has the same environment variable name as another key",
                       defs[i].name);
        }
    }
    gr_config *c = calloc(1, sizeof *c);
    if (!c) {
        GR_ERROR(SUB, "out of memory creating the configuration");
        return NULL;
    }
    c->defs = defs;
    c->ndefs = ndefs;
    c->slots = calloc(ndefs ? ndefs : 1, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        GR_ERROR(SUB, "out of memory creating the configuration");
        return NULL;
    }
    for (size_t i = 0; i < ndefs; i++) {
        if (!defs[i].dflt)
            continue;
        char err[256];
        int rc = parse_value(&defs[i], defs[i].dflt, &c->slots[i], err, sizeof err);
        if (rc == -2) {
            GR_ERROR(SUB, "out of memory creating the configuration");
            gr_config_free(c);
            return NULL;
        }
        if (rc) {
            GR_ERROR(SUB, "programming error: default '%s' of config key %s: %s", defs[i].dflt,
                     defs[i].name, err);
            abort();
        }
        c->slots[i].src = GR_CFG_SRC_DEFAULT;
    }
    return c;
}

void gr_config_free(gr_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndefs; i++)
        slot_clear(&c->slots[i]);
    free(c->slots);
    for (size_t i = 0; i < c->nunknown; i++) {
        free(c->unknown[i].key);
        free(c->unknown[i].text);
    }
    free(c->unknown);
    free(c);
}

/* ---- setting values ---- */

static int set_unknown(gr_config *c, const char *key, const char *value, gr_config_source src,
                       const char *where)
{
    char pk[256];
    GR_WARN(SUB, "unknown config key '%s' from %s: kept, but nothing uses it", printable(key, pk, sizeof pk),
            where);
    for (size_t i = 0; i < c->nunknown; i++) {
        unknown_kv *u = &c->unknown[i];
        if (strcmp(u->key, key) != 0)
            continue;
        if (src < u->src)
            return 0;
        char *t = dup_str(value);
        if (!t)
            goto oom;
        free(u->text);
        u->text = t;
        u->src = src;
        return 0;
    }
    if (c->nunknown == c->capunknown) {
        size_t cap = c->capunknown ? c->capunknown * 2 : 8;
        unknown_kv *u = realloc(c->unknown, cap * sizeof *u);
        if (!u)
            goto oom;
        c->unknown = u;
        c->capunknown = cap;
    }
    char *k = dup_str(key), *t = dup_str(value);
    if (!k || !t) {
        free(k);
        free(t);
        goto oom;
    }
    c->unknown[c->nunknown++] = (unknown_kv){k, t, src};
    return 0;
oom:
    GR_ERROR(SUB, "out of memory setting config key '%s' from %s", printable(key, pk, sizeof pk), where);
    return -1;
}

/* where describes the source for messages ("file x.properties line 3"). */
static int set_value(gr_config *c, const char *key, const char *value, gr_config_source src,
                     const char *where)
{
    size_t idx;
    const gr_config_def *def = find_def(c, key, &idx);
    if (!def)
        return set_unknown(c, key, value, src, where);
    slot fresh;
    char err[256];
    int rc = parse_value(def, value, &fresh, err, sizeof err);
    if (rc == -2) {
        GR_ERROR(SUB, "out of memory setting config key %s from %s", key, where);
        return -1;
    }
    if (rc) {
        char pv[256];
        GR_ERROR(SUB, "invalid value '%s' for config key %s (%s) from %s: %s",
                 def->type == GR_CFG_PASSWORD ? "[hidden]" : printable(value, pv, sizeof pv), key,
                 type_name(def->type), where, err);
        return -1;
    }
    slot *s = &c->slots[idx];
    if (src < s->src) { /* valid, but shadowed by a higher-precedence source */
        slot_clear(&fresh);
        return 0;
    }
    fresh.src = src;
    slot_clear(s);
    *s = fresh;
    return 0;
}

int gr_config_set(gr_config *c, const char *key, const char *value, gr_config_source src)
{
    if (src == GR_CFG_SRC_DEFAULT || src > GR_CFG_SRC_OVERRIDE) {
        GR_ERROR(SUB, "config key %s: a value cannot be set with source %s", key,
                 gr_config_source_name(src));
        return -1;
    }
    return set_value(c, key, value, src, gr_config_source_name(src));
}

/* ---- .properties files ---- */

/*
 * The syntax is java.util.Properties.load's:
 *  - a logical line is one or more natural lines; a natural line ending in
 *    an odd number of backslashes continues on the next one, whose leading
 *    whitespace is dropped;
 *  - leading whitespace is ignored; blank lines and lines whose first
 *    non-blank character is '#' or '!' are skipped (a comment never
 *    continues);
 *  - the key ends at the first unescaped '=', ':' or whitespace; whitespace
 *    and at most one '=' or ':' after it are skipped; the rest is the value;
 *  - escapes: \t \n \r \f, \uXXXX (UTF-16, surrogate pairs combined, written
 *    out as UTF-8), and a backslash before any other character stands for
 *    that character (\\ \= \: \# \! \space).
 * Two deliberate differences: bytes are taken as UTF-8 rather than
 * ISO-8859-1 (what operators actually write), and unescaped trailing
 * whitespace of a value is trimmed. Kafka keeps it, but "port=9092 " is a
 * classic operator mistake and nobody means a trailing blank; an escaped
 * one ("\ ") is kept.
 */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

typedef struct {
    const char *d;
    size_t n, pos;
    int line;       /* current natural line, 1-based */
    int start_line; /* where the last logical line began */
} line_reader;

/* Reads the next logical line (escapes left in, continuations joined) into
 * out. Returns 1, 0 at end of input, -1 on allocation failure. */
static int read_logical_line(line_reader *lr, sbuf *out)
{
    out->len = 0;
    if (sb_put(out, "", 0))
        return -1;
    bool skip_ws = true, continued = false, backslash = false;
    while (lr->pos < lr->n) {
        char c = lr->d[lr->pos++];
        bool eol = c == '\n' || c == '\r';
        if (eol) {
            if (c == '\r' && lr->pos < lr->n && lr->d[lr->pos] == '\n')
                lr->pos++;
            lr->line++;
        }
        if (skip_ws) {
            if (c == ' ' || c == '\t' || c == '\f')
                continue;
            if (!continued && eol)
                continue;
            skip_ws = false;
            continued = false;
        }
        if (out->len == 0 && (c == '#' || c == '!')) {
            while (lr->pos < lr->n && lr->d[lr->pos] != '\n' && lr->d[lr->pos] != '\r')
                lr->pos++;
            skip_ws = true;
            continue;
        }
        if (!eol) {
            if (out->len == 0)
                lr->start_line = lr->line;
            if (sb_put(out, &c, 1))
                return -1;
            backslash = c == '\\' ? !backslash : false;
            continue;
        }
        if (out->len == 0) {
            skip_ws = true;
            continue;
        }
        if (!backslash)
            return 1;
        out->p[--out->len] = '\0'; /* continuation: drop the backslash */
        skip_ws = true;
        continued = true;
        backslash = false;
    }
    if (backslash && out->len > 0)
        out->p[--out->len] = '\0';
    return out->len > 0 ? 1 : 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at s[*i]; advances *i past them. */
static long read_u4(const char *s, size_t n, size_t *i)
{
    if (n - *i < 4)
        return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[*i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    *i += 4;
    return v;
}

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes escapes of s[0..n) into out. If trim, unescaped trailing
 * whitespace is dropped. Returns 0, -1 with a reason in err, -2 on OOM. */
static int unescape(const char *s, size_t n, bool trim, sbuf *out, char *err, size_t errlen)
{
    out->len = 0;
    if (sb_put(out, "", 0))
        return -2;
    size_t keep = 0; /* output length that trimming may not cut into */
    for (size_t i = 0; i < n;) {
        char ch = s[i++];
        if (ch != '\\') {
            if (sb_put(out, &ch, 1))
                return -2;
            continue;
        }
        if (i == n)
            break; /* a lone trailing backslash stands for nothing */
        char e = s[i++];
        char enc[4];
        size_t elen = 1;
        switch (e) {
        case 't': enc[0] = '\t'; break;
        case 'n': enc[0] = '\n'; break;
        case 'r': enc[0] = '\r'; break;
        case 'f': enc[0] = '\f'; break;
        case 'u': {
            long cp = read_u4(s, n, &i);
            if (cp < 0) {
                fmt_err(err, errlen, "malformed \\uXXXX escape");
                return -1;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = -1;
                if (n - i >= 6 && s[i] == '\\' && s[i + 1] == 'u') {
                    size_t j = i + 2;
                    lo = read_u4(s, n, &j);
                    if (lo >= 0xDC00 && lo <= 0xDFFF)
                        i = j;
                    else
                        lo = -1;
                }
                if (lo < 0) {
                    fmt_err(err, errlen, "\\u%04lX is half of a surrogate pair", cp);
                    return -1;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fmt_err(err, errlen, "\\u%04lX is half of a surrogate pair", cp);
                return -1;
            } else if (cp == 0) {
                fmt_err(err, errlen, "\\u0000 is not allowed");
                return -1;
            }
            elen = utf8_encode((unsigned long)cp, enc);
            break;
        }
        default: enc[0] = e; break;
        }
        if (sb_put(out, enc, elen))
            return -2;
        keep = out->len;
    }
    if (trim) {
        while (out->len > keep && is_ws(out->p[out->len - 1]))
            out->len--;
        out->p[out->len] = '\0';
    }
    return 0;
}

/* Parses one logical line into key and value and sets it. Returns 0, -1
 * for a bad line or value (logged), -2 on OOM. */
static int load_line(gr_config *c, const char *line, size_t len, sbuf *key, sbuf *val, const char *where)
{
    size_t klen = 0, vstart = len;
    bool sep = false, backslash = false;
    for (; klen < len; klen++) {
        char ch = line[klen];
        if (!backslash && (ch == '=' || ch == ':')) {
            vstart = klen + 1;
            sep = true;
            break;
        }
        if (!backslash && (ch == ' ' || ch == '\t' || ch == '\f')) {
            vstart = klen + 1;
            break;
        }
        backslash = ch == '\\' ? !backslash : false;
    }
    for (; vstart < len; vstart++) {
        char ch = line[vstart];
        if (ch != ' ' && ch != '\t' && ch != '\f') {
            if (sep || (ch != '=' && ch != ':'))
                break;
            sep = true;
        }
    }
    char err[128];
    int rc = unescape(line, klen, false, key, err, sizeof err);
    if (rc == 0)
        rc = unescape(line + vstart, len - vstart, true, val, err, sizeof err);
    if (rc == -1) {
        GR_ERROR(SUB, "%s: %s", where, err);
        return -1;
    }
    if (rc == -2)
        return -2;
    if (strlen(key->p) != key->len || strlen(val->p) != val->len) {
        GR_ERROR(SUB, "%s: contains a NUL byte", where);
        return -1;
    }
    return set_value(c, key->p, val->p, GR_CFG_SRC_FILE, where);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        GR_ERROR(SUB, "cannot open config file %s: %s", path, strerror(errno));
        return NULL;
    }
    sbuf b = {0};
    char chunk[8192];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > MAX_FILE_BYTES) {
            GR_ERROR(SUB, "config file %s is larger than %u bytes", path, MAX_FILE_BYTES);
            ok = false;
            break;
        }
        if (sb_put(&b, chunk, n)) {
            GR_ERROR(SUB, "out of memory reading config file %s", path);
            ok = false;
            break;
        }
    }
    if (ok && ferror(f)) {
        GR_ERROR(SUB, "cannot read config file %s: %s", path, strerror(errno));
        ok = false;
    }
    if (ok && !b.p && sb_put(&b, "", 0)) {
        GR_ERROR(SUB, "out of memory reading config file %s", path);
        ok = false;
    }
    fclose(f);
    if (!ok) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int gr_config_load_file(gr_config *c, const char *path)
{
    size_t n;
    char *data = read_file(path, &n);
    if (!data)
        return -1;
    line_reader lr = {data, n, 0, 1, 1};
    sbuf line = {0}, key = {0}, val = {0};
    int result = 0;
    for (;;) {
        int rc = read_logical_line(&lr, &line);
        if (rc == 0)
            break;
        if (rc > 0) {
            char where[512];
            snprintf(where, sizeof where, "file %s line %d", path, lr.start_line);
            rc = load_line(c, line.p, line.len, &key, &val, where);
            if (rc == -1) {
                result = -1; /* keep going: report every bad line at once */
                continue;
            }
        }
        if (rc < 0) {
            GR_ERROR(SUB, "out of memory reading config file %s", path);
            result = -1;
            break;
        }
    }
    free(line.p);
    free(key.p);
    free(val.p);
    free(data);
    return result;
}

/* ---- command line and environment ---- */

static const char *base_name(const char *argv0)
{
    if (!argv0)
        return "gregor";
    const char *s = strrchr(argv0, '/');
    return s ? s + 1 : argv0;
}

static int load_env(gr_config *c, char **envp)
{
    if (!envp)
        return 0;
    int result = 0;
    char name[256], where[300];
    for (size_t i = 0; i < c->ndefs; i++) {
        if (!env_name(c->defs[i].name, name, sizeof name))
            continue;
        size_t nlen = strlen(name);
        for (char **e = envp; *e; e++) {
            if (strncmp(*e, name, nlen) == 0 && (*e)[nlen] == '=') {
                snprintf(where, sizeof where, "environment variable %s", name);
                if (set_value(c, c->defs[i].name, *e + nlen + 1, GR_CFG_SRC_ENV, where))
                    result = -1;
            }
        }
    }
    size_t plen = strlen(ENV_PREFIX);
    for (char **e = envp; *e; e++) {
        if (strncmp(*e, ENV_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t nlen = eq ? (size_t)(eq - *e) : strlen(*e);
        bool known = false;
        for (size_t i = 0; i < c->ndefs && !known; i++)
            known = env_name(c->defs[i].name, name, sizeof name) && strlen(name) == nlen &&
                    strncmp(name, *e, nlen) == 0;
        if (!known)
            GR_WARN(SUB, "environment variable %.*s matches no config key; ignored", (int)nlen, *e);
    }
    return result;
}

int gr_config_load(gr_config *c, int argc, char **argv, char **envp)
{
    const char *prog = base_name(argc > 0 ? argv[0] : NULL);
    const char *file = NULL;
    int result = 0;
    /* First pass: check the arguments, so that a typo fails before anything
     * else is read. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        bool is_config = strcmp(a, "--config") == 0, is_override = strcmp(a, "--override") == 0;
        if (is_config || is_override) {
            if (i + 1 >= argc) {
                GR_ERROR(SUB, "%s needs an argument (usage: %s [--config FILE] [--override key=value]...)",
                         a, prog);
                return -1;
            }
            val = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            is_config = true;
            val = a + 9;
        } else if (strncmp(a, "--override=", 11) == 0) {
            is_override = true;
            val = a + 11;
        } else if (a[0] != '-' && a[0] != '\0') {
            is_config = true; /* kafka-server-start style: the file as the only positional */
            val = a;
        } else {
            GR_ERROR(SUB, "unrecognised argument '%s' (usage: %s [--config FILE] [--override key=value]...)",
                     a, prog);
            return -1;
        }
        if (is_config) {
            if (file) {
                GR_ERROR(SUB, "more than one config file given ('%s' and '%s')", file, val);
                return -1;
            }
            if (!val[0]) {
                GR_ERROR(SUB, "--config needs a file name");
                return -1;
            }
            file = val;
        } else if (is_override) {
            const char *eq = strchr(val, '=');
            if (!eq || eq == val) {
                GR_ERROR(SUB, "--override '%s' is not of the form key=value", val);
                return -1;
            }
        }
    }
    if (load_env(c, envp))
        result = -1;
    if (file && gr_config_load_file(c, file))
        result = -1;
    for (int i = 1; i < argc; i++) {
        const char *val;
        if (strcmp(argv[i], "--override") == 0)
            val = argv[++i];
        else if (strncmp(argv[i], "--override=", 11) == 0)
            val = argv[i] + 11;
        else {
            if (strcmp(argv[i], "--config") == 0)
                i++;
            continue;
        }
        const char *eq = strchr(val, '=');
        size_t klen = (size_t)(eq - val);
        char *key = malloc(klen + 1);
        if (!key) {
            GR_ERROR(SUB, "out of memory reading --override %s", val);
            return -1;
        }
        memcpy(key, val, klen);
        key[klen] = '\0';
        if (set_value(c, key, eq + 1, GR_CFG_SRC_OVERRIDE, "--override"))
            result = -1;
        free(key);
    }
    return result;
}

/* ---- getters ---- */

int32_t gr_config_int(const gr_config *c, const char *key)
{
    return (int32_t)get_slot(c, key, GR_CFG_INT, GR_CFG_INT, true)->i;
}

int64_t gr_config_long(const gr_config *c, const char *key)
{
    return get_slot(c, key, GR_CFG_LONG, GR_CFG_INT, true)->i;
}

bool gr_config_bool(const gr_config *c, const char *key)
{
    return get_slot(c, key, GR_CFG_BOOL, GR_CFG_BOOL, true)->b;
}

double gr_config_double(const gr_config *c, const char *key)
{
    return get_slot(c, key, GR_CFG_DOUBLE, GR_CFG_DOUBLE, true)->d;
}

const char *gr_config_str(const gr_config *c, const char *key)
{
    size_t idx;
    if (!find_def(c, key, &idx))
        misuse("config key '%s' is not defined", key);
    return c->slots[idx].text;
}

const char *const *gr_config_list(const gr_config *c, const char *key, size_t *n)
{
    static const char *const empty[] = {NULL};
    const slot *s = get_slot(c, key, GR_CFG_LIST, GR_CFG_LIST, false);
    if (n)
        *n = s->nitems;
    return s->items ? (const char *const *)s->items : empty;
}

gr_config_source gr_config_get_source(const gr_config *c, const char *key)
{
    size_t idx;
    if (!find_def(c, key, &idx))
        misuse("config key '%s' is not defined", key);
    return c->slots[idx].src;
}

bool gr_config_is_set(const gr_config *c, const char *key)
{
    return gr_config_get_source(c, key) != GR_CFG_SRC_DEFAULT;
}

const char *gr_config_original(const gr_config *c, const char *key)
{
    size_t idx;
    if (find_def(c, key, &idx))
        return c->slots[idx].src != GR_CFG_SRC_DEFAULT ? c->slots[idx].text : NULL;
    for (size_t i = 0; i < c->nunknown; i++)
        if (strcmp(c->unknown[i].key, key) == 0)
            return c->unknown[i].text;
    return NULL;
}

static int cmp_def_name(const void *a, const void *b)
{
    return strcmp((*(const gr_config_def *const *)a)->name, (*(const gr_config_def *const *)b)->name);
}

void gr_config_log(const gr_config *c, const char *subsystem)
{
    const gr_config_def **order = malloc((c->ndefs ? c->ndefs : 1) * sizeof *order);
    if (order) { /* without memory, log in table order rather than not at all */
        for (size_t i = 0; i < c->ndefs; i++)
            order[i] = &c->defs[i];
        qsort(order, c->ndefs, sizeof *order, cmp_def_name);
    }
    char pv[512];
    for (size_t k = 0; k < c->ndefs; k++) {
        size_t i = order ? (size_t)(order[k] - c->defs) : k;
        const gr_config_def *def = &c->defs[i];
        const slot *s = &c->slots[i];
        const char *shown = !s->text                       ? "null"
                            : def->type == GR_CFG_PASSWORD ? "[hidden]"
                                                           : printable(s->text, pv, sizeof pv);
        GR_INFO(subsystem, "config %s = %s (%s)", def->name, shown, gr_config_source_name(s->src));
    }
    free(order);
    char pk[256];
    for (size_t i = 0; i < c->nunknown; i++)
        GR_INFO(subsystem, "config %s = %s (%s, unknown key, not used)",
                printable(c->unknown[i].key, pk, sizeof pk), printable(c->unknown[i].text, pv, sizeof pv),
                gr_config_source_name(c->unknown[i].src));
}

/* ---- listeners and voters ---- */

/* Items are quoted in error messages at most this long, so that the reason
 * after the quote survives the caller's error buffer. */
#define QLEN(n) ((int)((n) < 64 ? (n) : 64))

/* Parses "host:port" or "[v6]:port" of s[0..n) (already trimmed). An empty
 * host is allowed only if allow_empty_host. */
static int parse_host_port(const char *s, size_t n, bool allow_empty_host, int min_port, char *host,
                           size_t hostlen, int *port, char *err, size_t errlen)
{
    size_t hs, he, colon;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            fmt_err(err, errlen, "'%.*s': missing ']' after IPv6 address", QLEN(n), s);
            return -1;
        }
        hs = 1;
        he = (size_t)(close - s);
        colon = he + 1;
        if (colon >= n || s[colon] != ':') {
            fmt_err(err, errlen, "'%.*s': expected ':port' after ']'", QLEN(n), s);
            return -1;
        }
        bool has_colon = false;
        for (size_t i = hs; i < he; i++) {
            char ch = s[i];
            has_colon |= ch == ':';
            if (!(hexval(ch) >= 0 || ch == ':' || ch == '.' || ch == '%' || ch == '-' || ch == '_' ||
                  (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))) {
                fmt_err(err, errlen, "'%.*s': invalid character in IPv6 address", QLEN(n), s);
                return -1;
            }
        }
        if (!has_colon) {
            fmt_err(err, errlen, "'%.*s': brackets are only for IPv6 addresses", QLEN(n), s);
            return -1;
        }
    } else {
        const char *c = NULL;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ':')
                c = s + i;
        if (!c) {
            fmt_err(err, errlen, "'%.*s': missing ':port'", QLEN(n), s);
            return -1;
        }
        hs = 0;
        he = colon = (size_t)(c - s);
        for (size_t i = hs; i < he; i++) {
            char ch = s[i];
            if (ch == ':') {
                fmt_err(err, errlen, "'%.*s': IPv6 addresses must be in brackets", QLEN(n), s);
                return -1;
            }
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '-' || ch == '_')) {
                fmt_err(err, errlen, "'%.*s': invalid character in host name", QLEN(n), s);
                return -1;
            }
        }
    }
    if (he == hs && !allow_empty_host) {
        fmt_err(err, errlen, "'%.*s': host is empty", QLEN(n), s);
        return -1;
    }
    if (he - hs >= hostlen) {
        fmt_err(err, errlen, "'%.*s': host name too long", QLEN(n), s);
        return -1;
    }
    size_t ps = colon + 1;
    if (ps >= n) {
        fmt_err(err, errlen, "'%.*s': missing port number", QLEN(n), s);
        return -1;
    }
    long p = 0;
    for (size_t i = ps; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || p > 65535) {
            fmt_err(err, errlen, "'%.*s': port must be a number between %d and 65535", QLEN(n), s, min_port);
            return -1;
        }
        p = p * 10 + (s[i] - '0');
    }
    if (p < min_port || p > 65535) {
        fmt_err(err, errlen, "'%.*s': port must be a number between %d and 65535", QLEN(n), s, min_port);
        return -1;
    }
    memcpy(host, s + hs, he - hs);
    host[he - hs] = '\0';
    *port = (int)p;
    return 0;
}

/* Calls item(s, n, ctx) for each trimmed comma-separated item of value.
 * An empty item (",," or a trailing comma) is an error. */
typedef int (*item_fn)(const char *s, size_t n, void *ctx, char *err, size_t errlen);

static int for_each_item(const char *value, item_fn fn, void *ctx, char *err, size_t errlen)
{
    const char *p = value;
    while (is_ws(*p))
        p++;
    if (!*p)
        return 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && is_ws(*b))
            b++;
        while (e > b && is_ws(e[-1]))
            e--;
        if (b == e) {
            fmt_err(err, errlen, "empty item in '%s'", value);
            return -1;
        }
        if (fn(b, (size_t)(e - b), ctx, err, errlen))
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

typedef struct {
    gr_listener *out;
    int max, count;
} listener_ctx;

static int listener_item(const char *s, size_t n, void *vctx, char *err, size_t errlen)
{
    listener_ctx *ctx = vctx;
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n && !sep; i++)
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/')
            sep = s + i;
    if (!sep) {
        fmt_err(err, errlen, "'%.*s' is not NAME://host:port", QLEN(n), s);
        return -1;
    }
    size_t nlen = (size_t)(sep - s);
    if (ctx->count >= ctx->max) {
        fmt_err(err, errlen, "more than %d listeners", ctx->max);
        return -1;
    }
    gr_listener *l = &ctx->out[ctx->count];
    if (nlen == 0 || nlen >= sizeof l->name) {
        fmt_err(err, errlen, "'%.*s': listener name must be 1 to %zu characters", QLEN(n), s,
                sizeof l->name - 1);
        return -1;
    }
    for (size_t i = 0; i < nlen; i++) {
        char ch = s[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')) {
            fmt_err(err, errlen, "'%.*s': listener name may only contain letters, digits and '_'", QLEN(n), s);
            return -1;
        }
        l->name[i] = ch;
    }
    l->name[nlen] = '\0';
    const char *hp = sep + 3;
    if (parse_host_port(hp, n - (size_t)(hp - s), true, 0, l->host, sizeof l->host, &l->port, err, errlen))
        return -1;
    for (int i = 0; i < ctx->count; i++) {
        if (strcmp(ctx->out[i].name, l->name) == 0) {
            fmt_err(err, errlen, "listener name %s is used twice", l->name);
            return -1;
        }
        if (l->port != 0 && ctx->out[i].port == l->port) {
            fmt_err(err, errlen, "port %d is used by listeners %s and %s", l->port, ctx->out[i].name,
                    l->name);
            return -1;
        }
    }
    ctx->count++;
    return 0;
}

int gr_listeners_parse(const char *value, gr_listener *out, int max, char *err, size_t errlen)
{
    listener_ctx ctx = {out, max, 0};
    if (!value)
        return 0;
    return for_each_item(value, listener_item, &ctx, err, errlen) ? -1 : ctx.count;
}

typedef struct {
    gr_voter *out;
    int max, count;
} voter_ctx;

static int voter_item(const char *s, size_t n, void *vctx, char *err, size_t errlen)
{
    voter_ctx *ctx = vctx;
    const char *at = memchr(s, '@', n);
    if (!at) {
        fmt_err(err, errlen, "'%.*s' is not id@host:port", QLEN(n), s);
        return -1;
    }
    if (ctx->count >= ctx->max) {
        fmt_err(err, errlen, "more than %d voters", ctx->max);
        return -1;
    }
    gr_voter *v = &ctx->out[ctx->count];
    int64_t id = 0;
    bool ok = at > s;
    for (const char *p = s; p < at && ok; p++) {
        ok = *p >= '0' && *p <= '9';
        id = id * 10 + (*p - '0');
        ok = ok && id <= INT32_MAX;
    }
    if (!ok) {
        fmt_err(err, errlen, "'%.*s': voter id must be a number between 0 and %d", QLEN(n), s, INT32_MAX);
        return -1;
    }
    v->id = (int32_t)id;
    const char *hp = at + 1;
    if (parse_host_port(hp, n - (size_t)(hp - s), false, 1, v->host, sizeof v->host, &v->port, err, errlen))
        return -1;
    for (int i = 0; i < ctx->count; i++) {
        if (ctx->out[i].id == v->id) {
            fmt_err(err, errlen, "voter id %d is listed twice", (int)v->id);
            return -1;
        }
    }
    ctx->count++;
    return 0;
}

int gr_voters_parse(const char *value, gr_voter *out, int max, char *err, size_t errlen)
{
    voter_ctx ctx = {out, max, 0};
    if (!value)
        return 0;
    return for_each_item(value, voter_item, &ctx, err, errlen) ? -1 : ctx.count;
}
