/*
 * gregorctl.c - the admin command-line tool.
 *
 *   gregorctl [-b HOST:PORT] [--json] GROUP VERB [ARGS...] [OPTIONS...]
 *
 * Every command is one row of `commands` below: its words, the positional
 * arguments and options it accepts, and a function that builds one or two
 * requests, sends them with the blocking Kafka client (common/kclient, the
 * same code brokers use to call the controller) to the bootstrap broker, and
 * prints the answer: an aligned table or kafka-tools-like lines for people,
 * or a single JSON object with --json for scripts.
 *
 * The broker answers Metadata and DescribeCluster itself and forwards the
 * admin APIs (CreateTopics, DescribeConfigs, DescribeQuorum, ...) to the
 * active controller, so one address is all the tool needs. The exceptions
 * are DescribeLogDirs (each broker answers only for its own disks, so
 * `log-dirs describe` asks every broker the Metadata lists, at the address
 * it advertises, as kafka-log-dirs.sh does) and the group commands, as in
 * Kafka: a group's requests go to its coordinator (found with
 * FindCoordinator), ListGroups to every broker, and ListOffsets to each
 * partition's leader.
 *
 * Exit status: 0 on success, 1 when the cluster answered with an error or
 * could not be reached (the Kafka error name and a sentence go to stderr),
 * 2 for a command line we do not understand (usage goes to stderr).
 *
 * Memory: everything an invocation allocates (requests, decoded responses,
 * table cells, formatted strings) comes from one arena, freed on exit.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/kclient.h"
#include "common/logging.h"
#include "common/metaprops.h"
#include "common/version.h"
#include "proto/messages.h"
#include "tools/offset_reset.h"

#define DEFAULT_BOOTSTRAP "127.0.0.1:9092"
/* What the cluster may spend on an admin operation (the request's own
 * timeout field), and what we wait for the answer: a little more, so that
 * the broker's timeout error reaches us before ours fires. */
#define ADMIN_TIMEOUT_MS 30000
#define CALL_TIMEOUT_MS (ADMIN_TIMEOUT_MS + 10000)
#define PROBE_TIMEOUT_MS 3000
#define METADATA_TOPIC "__cluster_metadata"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Config resource types and IncrementalAlterConfigs operations (Kafka's). */
enum { RES_TOPIC = 2, RES_BROKER = 4 };
enum { OP_SET = 0, OP_DELETE = 1 };

/* ---- options ---- */

enum {
    O_PARTITIONS = 1u << 0,
    O_REPLICATION = 1u << 1,
    O_CONFIG = 1u << 2,
    O_IF_NOT_EXISTS = 1u << 3,
    O_VALIDATE_ONLY = 1u << 4,
    O_INTERNAL = 1u << 5,
    O_TOPIC = 1u << 6,
    O_BROKER = 1u << 7,
    O_ALL = 1u << 8,
    /* accepted everywhere */
    O_BOOTSTRAP = 1u << 9,
    O_JSON = 1u << 10,
    O_HELP = 1u << 11,
    /* groups */
    O_STATE = 1u << 12,
    O_TO_EARLIEST = 1u << 13,
    O_TO_LATEST = 1u << 14,
    O_TO_OFFSET = 1u << 15,
    O_TO_DATETIME = 1u << 16,
    O_SHIFT_BY = 1u << 17,
    O_EXECUTE = 1u << 18,
};
#define O_RESET_MODES (O_TO_EARLIEST | O_TO_LATEST | O_TO_OFFSET | O_TO_DATETIME | O_SHIFT_BY)
#define O_GLOBAL (O_BOOTSTRAP | O_JSON | O_HELP)

typedef struct {
    const char *lng;
    char shrt;
    const char *arg; /* the argument's name in help; NULL: a flag */
    unsigned bit;
    const char *help;
} option;

static const option options[] = {
    {"bootstrap-server", 'b', "HOST:PORT", O_BOOTSTRAP,
     "broker to talk to (default $GREGOR_BOOTSTRAP, else " DEFAULT_BOOTSTRAP ")"},
    {"json", 0, NULL, O_JSON, "print one JSON object instead of text"},
    {"help", 'h', NULL, O_HELP, "show help"},
    {"partitions", 'p', "N", O_PARTITIONS, "partition count (create: default the broker's)"},
    {"replication-factor", 'r', "R", O_REPLICATION, "replication factor (default the broker's)"},
    {"config", 'c', "KEY=VALUE", O_CONFIG, "a topic config; repeat for more"},
    {"if-not-exists", 0, NULL, O_IF_NOT_EXISTS, "succeed if the topic already exists"},
    {"validate-only", 0, NULL, O_VALIDATE_ONLY, "check the request without applying it"},
    {"include-internal", 0, NULL, O_INTERNAL, "list internal topics too"},
    {"topic", 0, "NAME", O_TOPIC,
     "the topic whose configs to use (log-dirs: to show; group reset-offsets: to reset)"},
    {"broker", 0, "ID", O_BROKER, "the broker whose configs to use (log-dirs: to ask)"},
    {"all", 0, NULL, O_ALL, "include configs at their default values"},
    {"state", 0, "STATE[,STATE...]", O_STATE, "only groups in these states (Stable, Empty, ...)"},
    {"to-earliest", 0, NULL, O_TO_EARLIEST, "reset to the log start offset"},
    {"to-latest", 0, NULL, O_TO_LATEST, "reset to the log end offset"},
    {"to-offset", 0, "N", O_TO_OFFSET, "reset to offset N (within the log)"},
    {"to-datetime", 0, "ISO8601", O_TO_DATETIME,
     "reset to the first offset at or after a time (YYYY-MM-DDTHH:MM:SS.sss[Z|+HH:MM])"},
    {"shift-by", 0, "N", O_SHIFT_BY, "move the committed offset by N (may be negative)"},
    {"execute", 0, NULL, O_EXECUTE, "commit the new offsets (without it: a dry run)"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* ---- JSON writer: one object on stdout ---- */

#define JSON_MAX_DEPTH 16

typedef struct {
    int depth;
    bool first[JSON_MAX_DEPTH];
    bool after_key;
} json_writer;

/* ---- the invocation ---- */

typedef struct ctl {
    gr_arena arena;
    const char *bootstrap; /* HOST:PORT[,HOST:PORT...] */
    char **hosts;          /* the endpoints of bootstrap, tried in order */
    int *ports;
    int nendpoints, cur;   /* cur: the one in use */
    bool json;
    json_writer jw;
    const char **args; /* positionals after GROUP VERB */
    int nargs;
    unsigned seen; /* options given */
    int32_t partitions;
    int16_t replication;
    const char **configs; /* -c values, in order */
    int nconfigs;
    const char *topic;
    const char *broker;
    const char **states; /* --state, canonical names */
    int nstates;
    gr_reset_mode reset_mode;
    int64_t reset_arg;
    bool execute;
} ctl;

typedef struct {
    const char *group, *verb;
    const char *synopsis; /* positionals and options, for usage */
    const char *summary;
    int min_args, max_args; /* max -1: any number */
    unsigned opts;          /* options besides the global ones */
    int (*run)(ctl *c);
} command;

static const command commands[];
static const size_t ncommands;

/* ---- memory and strings ---- */

static void cleanup_exit(ctl *c, int status)
{
    fflush(stdout);
    gr_arena_free(&c->arena);
    exit(status);
}

static void *xalloc(ctl *c, size_t n, size_t size)
{
    void *p = gr_arena_calloc(&c->arena, n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "Error: out of memory\n");
        cleanup_exit(c, EXIT_FAIL);
    }
    return p;
}

static char *fmt(ctl *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(ctl *c, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = xalloc(c, (size_t)n + 1, 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* A NUL-terminated copy of a wire string; NULL for a null one. */
static const char *cstr(ctl *c, gr_str s)
{
    if (s.len < 0)
        return NULL;
    char *p = xalloc(c, (size_t)s.len + 1, 1);
    if (s.len)
        memcpy(p, s.ptr, (size_t)s.len);
    return p;
}

static int str_cmp(gr_str a, gr_str b)
{
    int32_t la = a.len < 0 ? 0 : a.len, lb = b.len < 0 ? 0 : b.len;
    int r = memcmp(a.ptr ? a.ptr : "", b.ptr ? b.ptr : "", (size_t)(la < lb ? la : lb));
    return r ? r : (la > lb) - (la < lb);
}

/* "1,2,3" */
static const char *join_ids(ctl *c, const int32_t *ids, int32_t n)
{
    char *s = xalloc(c, (size_t)(n > 0 ? n : 0) * 12 + 1, 1);
    size_t len = 0;
    for (int32_t i = 0; i < n; i++)
        len += (size_t)sprintf(s + len, "%s%d", i ? "," : "", ids[i]);
    return s;
}

static const char *topic_id_str(ctl *c, const gr_uuid *u)
{
    char *s = xalloc(c, 23, 1);
    gr_uuid_base64(u->b, s);
    return s;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON ---- */

static void json_sep(ctl *c)
{
    json_writer *j = &c->jw;
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0 && !j->first[j->depth])
        putchar(',');
    j->first[j->depth] = false;
}

static void json_quote(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                printf("\\u%04x", ch);
            else
                putchar(ch);
        }
    }
    putchar('"');
}

static void json_open(ctl *c, char bracket)
{
    json_sep(c);
    putchar(bracket);
    if (c->jw.depth + 1 < JSON_MAX_DEPTH)
        c->jw.depth++;
    c->jw.first[c->jw.depth] = true;
}

static void json_close(ctl *c, char bracket)
{
    putchar(bracket);
    c->jw.depth--;
    if (c->jw.depth == 0)
        putchar('\n');
}

static void json_key(ctl *c, const char *k)
{
    json_sep(c);
    json_quote(k, strlen(k));
    putchar(':');
    c->jw.after_key = true;
}

static void json_str(ctl *c, const char *k, const char *v)
{
    if (k)
        json_key(c, k);
    json_sep(c);
    if (v)
        json_quote(v, strlen(v));
    else
        fputs("null", stdout);
}

static void json_gstr(ctl *c, const char *k, gr_str v)
{
    json_str(c, k, cstr(c, v));
}

static void json_int(ctl *c, const char *k, int64_t v)
{
    if (k)
        json_key(c, k);
    json_sep(c);
    printf("%lld", (long long)v);
}

static void json_bool(ctl *c, const char *k, bool v)
{
    json_key(c, k);
    json_sep(c);
    fputs(v ? "true" : "false", stdout);
}

static void json_ids(ctl *c, const char *k, const int32_t *ids, int32_t n)
{
    json_key(c, k);
    json_open(c, '[');
    for (int32_t i = 0; i < n; i++)
        json_int(c, NULL, ids[i]);
    json_close(c, ']');
}

/* ---- tables for people ---- */

#define TABLE_MAX_COLS 8

typedef struct {
    int ncols, nrows, cap;
    const char **cells; /* row-major, row 0 the header */
} table;

static void table_grow(ctl *c, table *t)
{
    int cap = t->cap ? t->cap * 2 : 16;
    const char **cells = xalloc(c, (size_t)cap * (size_t)t->ncols, sizeof *cells);
    if (t->nrows)
        memcpy(cells, t->cells, (size_t)t->nrows * (size_t)t->ncols * sizeof *cells);
    t->cells = cells;
    t->cap = cap;
}

/* Adds a row of t->ncols strings (NULL prints as "-"). */
static void table_row(ctl *c, table *t, ...)
{
    if (t->nrows == t->cap)
        table_grow(c, t);
    va_list ap;
    va_start(ap, t);
    for (int i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncols + i] = s ? s : "-";
    }
    va_end(ap);
    t->nrows++;
}

static void table_print(const table *t)
{
    size_t width[TABLE_MAX_COLS] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int i = 0; i < t->ncols; i++) {
            size_t n = strlen(t->cells[r * t->ncols + i]);
            if (n > width[i])
                width[i] = n;
        }
    for (int r = 0; r < t->nrows; r++) {
        for (int i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            if (i + 1 == t->ncols)
                printf("%s\n", s);
            else
                printf("%-*s  ", (int)width[i], s);
        }
    }
}

/* ---- errors ---- */

/* A sentence per error code we expect from admin requests; %s names the
 * resource ("Topic 'x'"). Used when the response carries no message. */
static const struct {
    int16_t code;
    const char *sentence;
} error_sentences[] = {
    {GR_TOPIC_ALREADY_EXISTS, "%s already exists."},
    {GR_UNKNOWN_TOPIC_OR_PARTITION, "%s does not exist."},
    {GR_UNKNOWN_TOPIC_ID, "%s does not exist."},
    {GR_RESOURCE_NOT_FOUND, "%s does not exist."},
    {GR_INVALID_TOPIC_EXCEPTION, "%s is not a valid topic name."},
    {GR_INVALID_PARTITIONS, "The partition count asked for %s is not valid."},
    {GR_INVALID_REPLICATION_FACTOR,
     "The replication factor asked for %s is not valid or exceeds the number of available "
     "brokers."},
    {GR_INVALID_REPLICA_ASSIGNMENT, "The replica assignment asked for %s is not valid."},
    {GR_INVALID_CONFIG, "The configuration asked for %s is not valid."},
    {GR_INVALID_REQUEST, "The cluster rejected the request for %s as malformed."},
    {GR_POLICY_VIOLATION, "The request for %s violates a policy of the cluster."},
    {GR_TOPIC_DELETION_DISABLED, "Topic deletion is disabled on the cluster (%s)."},
    {GR_NOT_CONTROLLER, "No active controller could serve the request for %s; try again."},
    {GR_REQUEST_TIMED_OUT,
     "The request for %s timed out in the cluster; it may still complete."},
    {GR_TOPIC_AUTHORIZATION_FAILED, "Not authorized to act on %s."},
    {GR_CLUSTER_AUTHORIZATION_FAILED, "Not authorized to act on %s."},
    {GR_UNSUPPORTED_VERSION, "The cluster does not support this request for %s."},
    {GR_UNKNOWN_SERVER_ERROR, "The cluster failed unexpectedly while serving %s."},
    {GR_GROUP_ID_NOT_FOUND, "%s does not exist."},
    {GR_NON_EMPTY_GROUP, "%s still has members; stop them first."},
    {GR_COORDINATOR_NOT_AVAILABLE, "The coordinator of %s is not available; try again."},
    {GR_COORDINATOR_LOAD_IN_PROGRESS, "The coordinator of %s is still loading; try again."},
    {GR_NOT_COORDINATOR, "The coordinator of %s moved; try again."},
    {GR_GROUP_AUTHORIZATION_FAILED, "Not authorized to act on %s."},
    {GR_INVALID_GROUP_ID, "%s is not a valid group id."},
};

/* Prints "Error: NAME: sentence" for a Kafka error about `what`. */
static void print_kafka_error(ctl *c, int16_t code, gr_str message, const char *what)
{
    const char *msg = message.len > 0 ? cstr(c, message) : NULL;
    if (!msg) {
        const char *sentence = "The request for %s failed.";
        for (size_t i = 0; i < sizeof error_sentences / sizeof error_sentences[0]; i++)
            if (error_sentences[i].code == code)
                sentence = error_sentences[i].sentence;
        msg = fmt(c, sentence, what);
    }
    fprintf(stderr, "Error: %s: %s\n", gr_kafka_error_name(code), msg);
}

static int kafka_error(ctl *c, int16_t code, gr_str message, const char *what)
{
    print_kafka_error(c, code, message, what);
    return EXIT_FAIL;
}

static const char *topic_what(ctl *c, const char *name)
{
    return fmt(c, "Topic '%s'", name);
}

static const char *resource_what(ctl *c, int8_t type, const char *name)
{
    return type == RES_TOPIC ? topic_what(c, name) : fmt(c, "Broker %s", name);
}

/* Why host:port cannot be reached: the client reports only that it could
 * not, so connect once ourselves to name the cause. */
static const char *probe_reason(ctl *c)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->ports[c->cur]);
    int rc = getaddrinfo(c->hosts[c->cur], port, &hints, &ai);
    if (rc)
        return gai_strerror(rc);
    const char *why = "connection closed during the handshake";
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            why = strerror(errno);
            continue;
        }
        struct timeval tv = {PROBE_TIMEOUT_MS / 1000, (PROBE_TIMEOUT_MS % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        if (!ok)
            why = errno == EINPROGRESS ? "connection timed out" : strerror(errno);
        close(fd);
        if (!ok)
            continue;
        why = "connection closed during the handshake";
        break;
    }
    freeaddrinfo(ai);
    return fmt(c, "%s", why);
}

/* Reports a failed call (nothing came back from the cluster) and exits. */
static void call_failed(ctl *c, int16_t api_key, int err)
{
    const gr_api_info *api = gr_api_lookup(api_key);
    const char *name = api ? api->name : "this request";
    switch (err) {
    case GR_KCLIENT_ERR_CONNECT:
        fprintf(stderr, "Error: cannot reach %s: %s\n", c->bootstrap, probe_reason(c));
        break;
    case GR_KCLIENT_ERR_TIMEOUT:
        fprintf(stderr, "Error: cannot reach %s: no answer to %s within %d ms\n", c->bootstrap,
                name, CALL_TIMEOUT_MS);
        break;
    case GR_KCLIENT_ERR_DISCONNECTED:
        fprintf(stderr, "Error: cannot reach %s: the connection closed before the answer to %s\n",
                c->bootstrap, name);
        break;
    case GR_KCLIENT_ERR_UNSUPPORTED:
        fprintf(stderr, "Error: UNSUPPORTED_VERSION: The broker at %s:%d does not serve %s.\n",
                c->hosts[c->cur], c->ports[c->cur], name);
        break;
    default:
        fprintf(stderr, "Error: %s to %s failed: %s\n", name, c->bootstrap,
                gr_kclient_strerror(err));
    }
    cleanup_exit(c, EXIT_FAIL);
}

/* One request at the highest version both sides speak, to the first
 * bootstrap endpoint that accepts a connection; the decoded response (and
 * the version used, if version is not NULL), or exits with a message. */
static void *call_v(ctl *c, int16_t api_key, const void *req, int16_t *version)
{
    for (;;) {
        void *resp = NULL;
        int err = gr_kclient_call(c->hosts[c->cur], c->ports[c->cur], api_key, -1, req,
                                  CALL_TIMEOUT_MS, &c->arena, &resp, version);
        if (!err)
            return resp;
        if (err != GR_KCLIENT_ERR_CONNECT || c->cur + 1 == c->nendpoints)
            call_failed(c, api_key, err);
        c->cur++;
    }
}

static void *call(ctl *c, int16_t api_key, const void *req)
{
    return call_v(c, api_key, req, NULL);
}

/* ---- one helper per request kind ---- */

/* Metadata for the named topics, or every topic when n < 0. */
static gr_metadata_response *req_metadata(ctl *c, const char **names, int n)
{
    gr_metadata_request req;
    gr_metadata_request_init(&req);
    req.allow_auto_topic_creation = false;
    req.topics_count = n;
    if (n > 0) {
        req.topics = xalloc(c, (size_t)n, sizeof *req.topics);
        for (int i = 0; i < n; i++) {
            gr_metadata_request_topic_init(&req.topics[i]);
            req.topics[i].name = gr_str_from(names[i]);
        }
    }
    return call(c, GR_API_METADATA, &req);
}

static gr_create_topics_response *req_create_topic(ctl *c, const char *name)
{
    gr_create_topics_request_creatable_topic t;
    gr_create_topics_request_creatable_topic_init(&t);
    t.name = gr_str_from(name);
    t.num_partitions = c->partitions;
    t.replication_factor = c->replication;
    t.assignments_count = 0;
    t.configs_count = c->nconfigs;
    t.configs = xalloc(c, (size_t)c->nconfigs, sizeof *t.configs);
    for (int i = 0; i < c->nconfigs; i++) {
        const char *eq = strchr(c->configs[i], '=');
        gr_create_topics_request_creatable_topic_config_init(&t.configs[i]);
        t.configs[i].name = (gr_str){c->configs[i], (int32_t)(eq - c->configs[i])};
        t.configs[i].value = gr_str_from(eq + 1);
    }
    gr_create_topics_request req;
    gr_create_topics_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    req.validate_only = (c->seen & O_VALIDATE_ONLY) != 0;
    return call(c, GR_API_CREATE_TOPICS, &req);
}

static gr_delete_topics_response *req_delete_topic(ctl *c, const char *name)
{
    /* By name in both shapes: v6+ reads topics, older versions topic_names. */
    gr_delete_topics_request_delete_topic_state state;
    gr_delete_topics_request_delete_topic_state_init(&state);
    state.name = gr_str_from(name);
    gr_str names[1] = {gr_str_from(name)};
    gr_delete_topics_request req;
    gr_delete_topics_request_init(&req);
    req.topics = &state;
    req.topics_count = 1;
    req.topic_names = names;
    req.topic_names_count = 1;
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    return call(c, GR_API_DELETE_TOPICS, &req);
}

static gr_create_partitions_response *req_create_partitions(ctl *c, const char *name,
                                                            int32_t count)
{
    gr_create_partitions_request_create_partitions_topic t;
    gr_create_partitions_request_create_partitions_topic_init(&t);
    t.name = gr_str_from(name);
    t.count = count;
    t.assignments_count = -1;
    gr_create_partitions_request req;
    gr_create_partitions_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    req.validate_only = (c->seen & O_VALIDATE_ONLY) != 0;
    return call(c, GR_API_CREATE_PARTITIONS, &req);
}

/* Every config of n resources of one type. */
static gr_describe_configs_response *req_describe_configs(ctl *c, int8_t type,
                                                          const char **names, int n)
{
    gr_describe_configs_request req;
    gr_describe_configs_request_init(&req);
    req.resources = xalloc(c, (size_t)n, sizeof *req.resources);
    req.resources_count = n;
    for (int i = 0; i < n; i++) {
        gr_describe_configs_request_describe_configs_resource_init(&req.resources[i]);
        req.resources[i].resource_type = type;
        req.resources[i].resource_name = gr_str_from(names[i]);
        req.resources[i].configuration_keys_count = -1;
    }
    req.include_synonyms = false;
    req.include_documentation = false;
    return call(c, GR_API_DESCRIBE_CONFIGS, &req);
}

/* One operation on each key of keys ("key=value" for SET, "key" for DELETE). */
static gr_incremental_alter_configs_response *
req_alter_configs(ctl *c, int8_t type, const char *name, int8_t op, const char **keys, int n)
{
    gr_incremental_alter_configs_request_alter_configs_resource res;
    gr_incremental_alter_configs_request_alter_configs_resource_init(&res);
    res.resource_type = type;
    res.resource_name = gr_str_from(name);
    res.configs = xalloc(c, (size_t)n, sizeof *res.configs);
    res.configs_count = n;
    for (int i = 0; i < n; i++) {
        gr_incremental_alter_configs_request_alterable_config *ac = &res.configs[i];
        gr_incremental_alter_configs_request_alterable_config_init(ac);
        ac->config_operation = op;
        const char *eq = op == OP_SET ? strchr(keys[i], '=') : NULL;
        ac->name = eq ? (gr_str){keys[i], (int32_t)(eq - keys[i])} : gr_str_from(keys[i]);
        ac->value = eq ? gr_str_from(eq + 1) : GR_STR_NULL;
    }
    gr_incremental_alter_configs_request req;
    gr_incremental_alter_configs_request_init(&req);
    req.resources = &res;
    req.resources_count = 1;
    return call(c, GR_API_INCREMENTAL_ALTER_CONFIGS, &req);
}

static gr_describe_cluster_response *req_describe_cluster(ctl *c)
{
    gr_describe_cluster_request req;
    gr_describe_cluster_request_init(&req);
    return call(c, GR_API_DESCRIBE_CLUSTER, &req);
}

static gr_describe_quorum_response *req_describe_quorum(ctl *c)
{
    gr_describe_quorum_request_partition_data p;
    gr_describe_quorum_request_partition_data_init(&p);
    p.partition_index = 0;
    gr_describe_quorum_request_topic_data t;
    gr_describe_quorum_request_topic_data_init(&t);
    t.topic_name = gr_str_from(METADATA_TOPIC);
    t.partitions = &p;
    t.partitions_count = 1;
    gr_describe_quorum_request req;
    gr_describe_quorum_request_init(&req);
    req.topics = &t;
    req.topics_count = 1;
    return call(c, GR_API_DESCRIBE_QUORUM, &req);
}

/* ---- topic commands ---- */

static int cmd_topic_create(ctl *c)
{
    const char *name = c->args[0];
    gr_create_topics_response *resp = req_create_topic(c, name);
    if (resp->topics_count < 1)
        return kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, topic_what(c, name));
    gr_create_topics_response_creatable_topic_result *r = &resp->topics[0];
    bool existed = r->error_code == GR_TOPIC_ALREADY_EXISTS && (c->seen & O_IF_NOT_EXISTS);
    if (r->error_code && !existed)
        return kafka_error(c, r->error_code, r->error_message, topic_what(c, name));
    bool validated = (c->seen & O_VALIDATE_ONLY) != 0;
    if (c->json) {
        json_open(c, '{');
        json_str(c, "topic", name);
        json_bool(c, "created", !existed && !validated);
        json_bool(c, "validate_only", validated);
        if (!existed) {
            json_str(c, "topic_id", gr_uuid_is_zero(&r->topic_id) ? NULL
                                                                   : topic_id_str(c, &r->topic_id));
            json_int(c, "partitions", r->num_partitions);
            json_int(c, "replication_factor", r->replication_factor);
        }
        json_close(c, '}');
    } else if (existed) {
        printf("Topic %s already exists.\n", name);
    } else {
        printf(validated ? "Topic %s can be created (validation only).\n" : "Created topic %s.\n",
               name);
    }
    return EXIT_OK;
}

static int cmp_topic(const void *a, const void *b)
{
    const gr_metadata_response_topic *x = *(gr_metadata_response_topic *const *)a;
    const gr_metadata_response_topic *y = *(gr_metadata_response_topic *const *)b;
    return str_cmp(x->name, y->name);
}

static int cmp_partition(const void *a, const void *b)
{
    const gr_metadata_response_partition *x = a, *y = b;
    return (x->partition_index > y->partition_index) - (x->partition_index < y->partition_index);
}

/* The response's topics sorted by name (internal ones only if asked for). */
static gr_metadata_response_topic **sorted_topics(ctl *c, gr_metadata_response *md,
                                                  bool internal, int *n)
{
    gr_metadata_response_topic **v = xalloc(c, (size_t)md->topics_count, sizeof *v);
    *n = 0;
    for (int32_t i = 0; i < md->topics_count; i++)
        if (internal || !md->topics[i].is_internal)
            v[(*n)++] = &md->topics[i];
    qsort(v, (size_t)*n, sizeof *v, cmp_topic);
    return v;
}

static int cmd_topic_list(ctl *c)
{
    gr_metadata_response *md = req_metadata(c, NULL, -1);
    int n;
    gr_metadata_response_topic **topics = sorted_topics(c, md, c->seen & O_INTERNAL, &n);
    if (c->json) {
        json_open(c, '{');
        json_key(c, "topics");
        json_open(c, '[');
    }
    for (int i = 0; i < n; i++) {
        if (c->json)
            json_gstr(c, NULL, topics[i]->name);
        else
            printf("%s\n", cstr(c, topics[i]->name));
    }
    if (c->json) {
        json_close(c, ']');
        json_close(c, '}');
    }
    return EXIT_OK;
}

/* The result for one resource in a DescribeConfigs response, or NULL. */
static gr_describe_configs_response_describe_configs_result *
configs_for(gr_describe_configs_response *resp, gr_str name)
{
    for (int32_t i = 0; i < resp->results_count; i++)
        if (str_cmp(resp->results[i].resource_name, name) == 0)
            return &resp->results[i];
    return NULL;
}

/* Config sources (DescribeConfigs' ConfigSource), as the Admin client names them. */
static const char *source_name(int8_t source)
{
    static const char *const names[] = {
        "UNKNOWN",      "DYNAMIC_TOPIC_CONFIG",         "DYNAMIC_BROKER_CONFIG",
        "DYNAMIC_DEFAULT_BROKER_CONFIG", "STATIC_BROKER_CONFIG", "DEFAULT_CONFIG",
        "DYNAMIC_BROKER_LOGGER_CONFIG",  "CLIENT_METRICS_CONFIG", "GROUP_CONFIG",
    };
    return source >= 0 && (size_t)source < sizeof names / sizeof names[0] ? names[source]
                                                                           : "UNKNOWN";
}

/* Set on the resource itself or dynamically, rather than a default or the
 * static file: what kafka-configs shows without --all. */
static bool config_is_override(const gr_describe_configs_response_describe_configs_resource_result *e)
{
    if (e->config_source < 0) /* v0 carries only is_default */
        return !e->is_default;
    return e->config_source != 0 && e->config_source != 4 && e->config_source != 5;
}

static const char *config_value(ctl *c,
                                const gr_describe_configs_response_describe_configs_resource_result *e)
{
    if (e->is_sensitive && e->value.len < 0)
        return "(sensitive)";
    const char *v = cstr(c, e->value);
    return v ? v : "null";
}

static int cmp_config(const void *a, const void *b)
{
    const gr_describe_configs_response_describe_configs_resource_result *x = a, *y = b;
    return str_cmp(x->name, y->name);
}

/* "k=v,k=v" of a topic's overrides. */
static const char *topic_configs_line(ctl *c,
                                      gr_describe_configs_response_describe_configs_result *r)
{
    const char *line = "";
    for (int32_t i = 0; r && i < r->configs_count; i++)
        if (config_is_override(&r->configs[i]))
            line = fmt(c, "%s%s%s=%s", line, *line ? "," : "", cstr(c, r->configs[i].name),
                       config_value(c, &r->configs[i]));
    return line;
}

static void describe_topic_json(ctl *c, gr_metadata_response_topic *t,
                                gr_describe_configs_response_describe_configs_result *cfg)
{
    json_open(c, '{');
    json_gstr(c, "name", t->name);
    json_str(c, "topic_id", topic_id_str(c, &t->topic_id));
    json_bool(c, "internal", t->is_internal);
    json_int(c, "partition_count", t->partitions_count);
    json_int(c, "replication_factor", t->partitions_count ? t->partitions[0].replica_nodes_count : 0);
    json_key(c, "configs");
    json_open(c, '{');
    for (int32_t i = 0; cfg && i < cfg->configs_count; i++)
        if (config_is_override(&cfg->configs[i]))
            json_str(c, cstr(c, cfg->configs[i].name), config_value(c, &cfg->configs[i]));
    json_close(c, '}');
    json_key(c, "partitions");
    json_open(c, '[');
    for (int32_t i = 0; i < t->partitions_count; i++) {
        gr_metadata_response_partition *p = &t->partitions[i];
        json_open(c, '{');
        json_int(c, "partition", p->partition_index);
        json_int(c, "leader", p->leader_id);
        json_int(c, "leader_epoch", p->leader_epoch);
        json_ids(c, "replicas", p->replica_nodes, p->replica_nodes_count);
        json_ids(c, "isr", p->isr_nodes, p->isr_nodes_count);
        json_ids(c, "offline", p->offline_replicas, p->offline_replicas_count);
        if (p->error_code)
            json_str(c, "error", gr_kafka_error_name(p->error_code));
        json_close(c, '}');
    }
    json_close(c, ']');
    json_close(c, '}');
}

static void describe_topic_text(ctl *c, gr_metadata_response_topic *t,
                                gr_describe_configs_response_describe_configs_result *cfg)
{
    const char *name = cstr(c, t->name);
    printf("Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
           name, topic_id_str(c, &t->topic_id), t->partitions_count,
           t->partitions_count ? t->partitions[0].replica_nodes_count : 0,
           topic_configs_line(c, cfg));
    for (int32_t i = 0; i < t->partitions_count; i++) {
        gr_metadata_response_partition *p = &t->partitions[i];
        printf("\tTopic: %s\tPartition: %d\tLeader: %s\tLeaderEpoch: %d\tReplicas: %s\tIsr: %s"
               "\tOffline: %s%s%s\n",
               name, p->partition_index, p->leader_id < 0 ? "none" : fmt(c, "%d", p->leader_id),
               p->leader_epoch, join_ids(c, p->replica_nodes, p->replica_nodes_count),
               join_ids(c, p->isr_nodes, p->isr_nodes_count),
               join_ids(c, p->offline_replicas, p->offline_replicas_count),
               p->error_code ? "\tError: " : "", p->error_code ? gr_kafka_error_name(p->error_code) : "");
    }
}

static int cmd_topic_describe(ctl *c)
{
    gr_metadata_response *md = req_metadata(c, c->args, c->nargs ? c->nargs : -1);
    int n;
    gr_metadata_response_topic **topics = sorted_topics(c, md, c->nargs || (c->seen & O_INTERNAL),
                                                        &n);
    const char **names = xalloc(c, (size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        if (topics[i]->error_code)
            return kafka_error(c, topics[i]->error_code, GR_STR_NULL,
                               topic_what(c, cstr(c, topics[i]->name)));
        names[i] = cstr(c, topics[i]->name);
        qsort(topics[i]->partitions, (size_t)topics[i]->partitions_count,
              sizeof *topics[i]->partitions, cmp_partition);
    }
    gr_describe_configs_response *cfgs = n ? req_describe_configs(c, RES_TOPIC, names, n) : NULL;
    if (c->json) {
        json_open(c, '{');
        json_key(c, "topics");
        json_open(c, '[');
    }
    for (int i = 0; i < n; i++) {
        gr_describe_configs_response_describe_configs_result *cfg = configs_for(cfgs, topics[i]->name);
        if (cfg && cfg->error_code)
            return kafka_error(c, cfg->error_code, cfg->error_message, topic_what(c, names[i]));
        if (cfg)
            qsort(cfg->configs, (size_t)cfg->configs_count, sizeof *cfg->configs, cmp_config);
        if (c->json)
            describe_topic_json(c, topics[i], cfg);
        else
            describe_topic_text(c, topics[i], cfg);
    }
    if (c->json) {
        json_close(c, ']');
        json_close(c, '}');
    }
    return EXIT_OK;
}

/* Prints the outcome of a command on one topic that has nothing more to say. */
static int topic_done(ctl *c, const char *name, int16_t code, gr_str message,
                      const char *done_sentence)
{
    if (code)
        return kafka_error(c, code, message, topic_what(c, name));
    if (c->json) {
        json_open(c, '{');
        json_str(c, "topic", name);
        json_bool(c, "ok", true);
        json_close(c, '}');
    } else {
        printf(done_sentence, name);
    }
    return EXIT_OK;
}

static int cmd_topic_delete(ctl *c)
{
    const char *name = c->args[0];
    gr_delete_topics_response *resp = req_delete_topic(c, name);
    if (resp->responses_count < 1)
        return kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, topic_what(c, name));
    return topic_done(c, name, resp->responses[0].error_code, resp->responses[0].error_message,
                      "Deleted topic %s.\n");
}

static int cmd_topic_add_partitions(ctl *c)
{
    const char *name = c->args[0];
    gr_create_partitions_response *resp = req_create_partitions(c, name, c->partitions);
    if (resp->results_count < 1)
        return kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, topic_what(c, name));
    return topic_done(c, name, resp->results[0].error_code, resp->results[0].error_message,
                      fmt(c, "Topic %%s now has %d partitions.\n", c->partitions));
}

/* ---- config commands ---- */

/* The resource named by --topic or --broker. */
static void config_resource(ctl *c, int8_t *type, const char **name)
{
    *type = c->topic ? RES_TOPIC : RES_BROKER;
    *name = c->topic ? c->topic : c->broker;
}

static int cmd_config_describe(ctl *c)
{
    int8_t type;
    const char *name;
    config_resource(c, &type, &name);
    gr_describe_configs_response *resp = req_describe_configs(c, type, &name, 1);
    gr_describe_configs_response_describe_configs_result *r = configs_for(resp, gr_str_from(name));
    if (!r)
        return kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, resource_what(c, type, name));
    if (r->error_code)
        return kafka_error(c, r->error_code, r->error_message, resource_what(c, type, name));
    qsort(r->configs, (size_t)r->configs_count, sizeof *r->configs, cmp_config);
    bool all = (c->seen & O_ALL) != 0;
    table t = {.ncols = 3};
    if (c->json) {
        json_open(c, '{');
        json_str(c, "resource_type", type == RES_TOPIC ? "topic" : "broker");
        json_str(c, "resource_name", name);
        json_key(c, "configs");
        json_open(c, '[');
    } else {
        table_row(c, &t, "KEY", "VALUE", "SOURCE");
    }
    for (int32_t i = 0; i < r->configs_count; i++) {
        gr_describe_configs_response_describe_configs_resource_result *e = &r->configs[i];
        if (!all && !config_is_override(e))
            continue;
        if (!c->json) {
            table_row(c, &t, cstr(c, e->name), config_value(c, e), source_name(e->config_source));
            continue;
        }
        json_open(c, '{');
        json_gstr(c, "name", e->name);
        json_str(c, "value", e->is_sensitive && e->value.len < 0 ? NULL : cstr(c, e->value));
        json_str(c, "source", source_name(e->config_source));
        json_bool(c, "read_only", e->read_only);
        json_bool(c, "sensitive", e->is_sensitive);
        json_close(c, '}');
    }
    if (c->json) {
        json_close(c, ']');
        json_close(c, '}');
    } else {
        table_print(&t);
    }
    return EXIT_OK;
}

static int config_alter(ctl *c, int8_t op)
{
    int8_t type;
    const char *name;
    config_resource(c, &type, &name);
    gr_incremental_alter_configs_response *resp = req_alter_configs(c, type, name, op, c->args,
                                                                    c->nargs);
    if (resp->responses_count < 1)
        return kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, resource_what(c, type, name));
    if (resp->responses[0].error_code)
        return kafka_error(c, resp->responses[0].error_code, resp->responses[0].error_message,
                           resource_what(c, type, name));
    if (c->json) {
        json_open(c, '{');
        json_str(c, "resource_type", type == RES_TOPIC ? "topic" : "broker");
        json_str(c, "resource_name", name);
        json_bool(c, "ok", true);
        json_close(c, '}');
    } else {
        printf("Updated config for %s %s.\n", type == RES_TOPIC ? "topic" : "broker", name);
    }
    return EXIT_OK;
}

static int cmd_config_set(ctl *c)
{
    return config_alter(c, OP_SET);
}

static int cmd_config_delete(ctl *c)
{
    return config_alter(c, OP_DELETE);
}

/* ---- cluster and quorum ---- */

static int cmd_cluster_describe(ctl *c)
{
    gr_describe_cluster_response *r = req_describe_cluster(c);
    if (r->error_code)
        return kafka_error(c, r->error_code, r->error_message, "the cluster");
    if (c->json) {
        json_open(c, '{');
        json_gstr(c, "cluster_id", r->cluster_id);
        json_int(c, "controller_id", r->controller_id);
        json_key(c, "brokers");
        json_open(c, '[');
        for (int32_t i = 0; i < r->brokers_count; i++) {
            json_open(c, '{');
            json_int(c, "id", r->brokers[i].broker_id);
            json_gstr(c, "host", r->brokers[i].host);
            json_int(c, "port", r->brokers[i].port);
            json_gstr(c, "rack", r->brokers[i].rack);
            json_close(c, '}');
        }
        json_close(c, ']');
        json_close(c, '}');
        return EXIT_OK;
    }
    printf("ClusterId: %s\nControllerId: %d\n\n", cstr(c, r->cluster_id), r->controller_id);
    table t = {.ncols = 4};
    table_row(c, &t, "ID", "HOST", "PORT", "RACK");
    for (int32_t i = 0; i < r->brokers_count; i++)
        table_row(c, &t, fmt(c, "%d", r->brokers[i].broker_id), cstr(c, r->brokers[i].host),
                  fmt(c, "%d", r->brokers[i].port), cstr(c, r->brokers[i].rack));
    table_print(&t);
    return EXIT_OK;
}

static int64_t replica_lag(const gr_describe_quorum_response_partition_data *p,
                           const gr_describe_quorum_replica_state *s)
{
    int64_t lag = p->high_watermark - s->log_end_offset;
    return lag > 0 ? lag : 0;
}

/* "123" ms before now, or NULL when the timestamp is unknown. */
static const char *ms_ago(ctl *c, int64_t ts, int64_t now)
{
    return ts < 0 ? NULL : fmt(c, "%lld", (long long)(now > ts ? now - ts : 0));
}

static void quorum_json_replicas(ctl *c, const char *key,
                                 const gr_describe_quorum_response_partition_data *p,
                                 const gr_describe_quorum_replica_state *v, int32_t n, int64_t now)
{
    json_key(c, key);
    json_open(c, '[');
    for (int32_t i = 0; i < n; i++) {
        json_open(c, '{');
        json_int(c, "node_id", v[i].replica_id);
        json_int(c, "log_end_offset", v[i].log_end_offset);
        json_int(c, "lag", replica_lag(p, &v[i]));
        json_int(c, "last_fetch_timestamp", v[i].last_fetch_timestamp);
        json_int(c, "last_caught_up_timestamp", v[i].last_caught_up_timestamp);
        const char *ago = ms_ago(c, v[i].last_fetch_timestamp, now);
        if (ago)
            json_int(c, "last_fetch_ms_ago", strtoll(ago, NULL, 10));
        else
            json_str(c, "last_fetch_ms_ago", NULL);
        json_close(c, '}');
    }
    json_close(c, ']');
}

static void quorum_table_replicas(ctl *c, table *t,
                                  const gr_describe_quorum_response_partition_data *p,
                                  const gr_describe_quorum_replica_state *v, int32_t n,
                                  bool voters, int64_t now)
{
    for (int32_t i = 0; i < n; i++) {
        const char *role = !voters ? "Observer" : v[i].replica_id == p->leader_id ? "Leader"
                                                                                   : "Follower";
        table_row(c, t, fmt(c, "%d", v[i].replica_id), role,
                  fmt(c, "%lld", (long long)v[i].log_end_offset),
                  fmt(c, "%lld", (long long)replica_lag(p, &v[i])),
                  ms_ago(c, v[i].last_fetch_timestamp, now),
                  ms_ago(c, v[i].last_caught_up_timestamp, now));
    }
}

static int64_t max_follower_lag(const gr_describe_quorum_response_partition_data *p)
{
    int64_t max = 0;
    for (int32_t i = 0; i < p->current_voters_count; i++)
        if (replica_lag(p, &p->current_voters[i]) > max)
            max = replica_lag(p, &p->current_voters[i]);
    return max;
}

static int cmd_quorum_describe(ctl *c)
{
    gr_describe_quorum_response *r = req_describe_quorum(c);
    if (r->error_code)
        return kafka_error(c, r->error_code, r->error_message, "the metadata quorum");
    if (r->topics_count < 1 || r->topics[0].partitions_count < 1)
        return kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, "the metadata quorum");
    gr_describe_quorum_response_partition_data *p = &r->topics[0].partitions[0];
    if (p->error_code)
        return kafka_error(c, p->error_code, p->error_message, "the metadata quorum");
    int64_t now = wall_ms();
    if (c->json) {
        json_open(c, '{');
        json_int(c, "leader_id", p->leader_id);
        json_int(c, "leader_epoch", p->leader_epoch);
        json_int(c, "high_watermark", p->high_watermark);
        json_int(c, "max_follower_lag", max_follower_lag(p));
        quorum_json_replicas(c, "voters", p, p->current_voters, p->current_voters_count, now);
        quorum_json_replicas(c, "observers", p, p->observers, p->observers_count, now);
        json_close(c, '}');
        return EXIT_OK;
    }
    printf("LeaderId: %d\nLeaderEpoch: %d\nHighWatermark: %lld\nMaxFollowerLag: %lld\n"
           "CurrentVoters: %d\nCurrentObservers: %d\n\n",
           p->leader_id, p->leader_epoch, (long long)p->high_watermark,
           (long long)max_follower_lag(p), p->current_voters_count, p->observers_count);
    table t = {.ncols = 6};
    table_row(c, &t, "NODE", "ROLE", "LOG-END-OFFSET", "LAG", "LAST-FETCH-MS-AGO",
              "LAST-CAUGHT-UP-MS-AGO");
    quorum_table_replicas(c, &t, p, p->current_voters, p->current_voters_count, true, now);
    quorum_table_replicas(c, &t, p, p->observers, p->observers_count, false, now);
    table_print(&t);
    return EXIT_OK;
}

/* ---- consumer groups ---- */

/* A broker to send a group's requests to: its coordinator, or a leader. */
typedef struct {
    int32_t id;
    const char *host;
    int port;
} node_addr;

static const char *group_what(ctl *c, const char *group)
{
    return fmt(c, "Group '%s'", group);
}

/* One request to a given broker at the highest version both sides speak
 * (the version used in *version, unless NULL); exits with a message when
 * nothing comes back. */
static void *call_at(ctl *c, node_addr to, int16_t api_key, const void *req, int16_t *version)
{
    void *resp = NULL;
    int err = gr_kclient_call(to.host, to.port, api_key, -1, req, CALL_TIMEOUT_MS, &c->arena,
                              &resp, version);
    if (err) {
        const gr_api_info *api = gr_api_lookup(api_key);
        const char *name = api ? api->name : "this request";
        if (err == GR_KCLIENT_ERR_UNSUPPORTED)
            fprintf(stderr, "Error: UNSUPPORTED_VERSION: The broker at %s:%d does not serve %s.\n",
                    to.host, to.port, name);
        else
            fprintf(stderr, "Error: %s to broker %d at %s:%d failed: %s\n", name, to.id, to.host,
                    to.port, gr_kclient_strerror(err));
        cleanup_exit(c, EXIT_FAIL);
    }
    return resp;
}

/* Errors that mean "ask the coordinator again in a moment": the internal
 * topic is being created, a coordinator is loading, or it moved. */
static bool coordinator_retriable(int16_t code)
{
    return code == GR_COORDINATOR_NOT_AVAILABLE || code == GR_COORDINATOR_LOAD_IN_PROGRESS ||
           code == GR_NOT_COORDINATOR;
}

#define COORDINATOR_WAIT_MS 15000
#define COORDINATOR_RETRY_MS 200

static void retry_pause(void)
{
    nanosleep(&(struct timespec){0, COORDINATOR_RETRY_MS * 1000000L}, NULL);
}

/* The coordinator of group; waits while it is not available yet (the
 * first FindCoordinator of a cluster creates __consumer_offsets). */
static node_addr find_coordinator(ctl *c, const char *group)
{
    gr_str key = gr_str_from(group);
    gr_find_coordinator_request req;
    gr_find_coordinator_request_init(&req);
    req.key = key;
    req.key_type = 0;
    req.coordinator_keys = &key;
    req.coordinator_keys_count = 1;
    for (int64_t start = wall_ms();;) {
        int16_t v = -1;
        gr_find_coordinator_response *r = call_v(c, GR_API_FIND_COORDINATOR, &req, &v);
        node_addr a = {r->node_id, cstr(c, r->host), r->port};
        int16_t err = r->error_code;
        gr_str msg = r->error_message;
        if (v >= 4) {
            if (r->coordinators_count < 1)
                err = GR_UNKNOWN_SERVER_ERROR, msg = GR_STR_NULL;
            else
                a = (node_addr){r->coordinators[0].node_id, cstr(c, r->coordinators[0].host),
                                r->coordinators[0].port},
                err = r->coordinators[0].error_code, msg = r->coordinators[0].error_message;
        }
        if (!err)
            return a;
        if (!coordinator_retriable(err) || wall_ms() - start > COORDINATOR_WAIT_MS) {
            print_kafka_error(c, err, msg, group_what(c, group));
            cleanup_exit(c, EXIT_FAIL);
        }
        retry_pause();
    }
}

/* The group-level error of a coordinator's response (0 if none). */
typedef int16_t (*group_error_fn)(const void *resp, int16_t version);

/* Sends req to group's coordinator, again (to a coordinator found anew)
 * while the answer says the coordinator is not ready or has moved. */
static void *group_call(ctl *c, const char *group, int16_t api_key, const void *req,
                        group_error_fn error_of, int16_t *version)
{
    for (int64_t start = wall_ms();;) {
        node_addr coord = find_coordinator(c, group);
        void *resp = call_at(c, coord, api_key, req, version);
        if (!coordinator_retriable(error_of(resp, *version)) ||
            wall_ms() - start > COORDINATOR_WAIT_MS)
            return resp;
        retry_pause();
    }
}

static int16_t describe_groups_error(const void *resp, int16_t version)
{
    (void)version;
    const gr_describe_groups_response *r = resp;
    return r->groups_count > 0 ? r->groups[0].error_code : 0;
}

static int16_t offset_fetch_error(const void *resp, int16_t version)
{
    const gr_offset_fetch_response *r = resp;
    if (version >= 8)
        return r->groups_count > 0 ? r->groups[0].error_code : 0;
    return r->error_code;
}

static int16_t offset_commit_error(const void *resp, int16_t version)
{
    (void)version;
    const gr_offset_commit_response *r = resp;
    return r->topics_count > 0 && r->topics[0].partitions_count > 0
               ? r->topics[0].partitions[0].error_code
               : 0;
}

static int16_t delete_groups_error(const void *resp, int16_t version)
{
    (void)version;
    const gr_delete_groups_response *r = resp;
    return r->results_count > 0 ? r->results[0].error_code : 0;
}

/* The group as DescribeGroups sees it; exits on a group-level error. A
 * group that does not exist is described as Dead (or, from DescribeGroups
 * v6, answered GROUP_ID_NOT_FOUND). */
static gr_describe_groups_response_described_group *describe_group(ctl *c, const char *group)
{
    gr_str name = gr_str_from(group);
    gr_describe_groups_request req;
    gr_describe_groups_request_init(&req);
    req.groups = &name;
    req.groups_count = 1;
    int16_t v;
    gr_describe_groups_response *r =
        group_call(c, group, GR_API_DESCRIBE_GROUPS, &req, describe_groups_error, &v);
    if (r->groups_count < 1) {
        print_kafka_error(c, GR_UNKNOWN_SERVER_ERROR, GR_STR_NULL, group_what(c, group));
        cleanup_exit(c, EXIT_FAIL);
    }
    gr_describe_groups_response_described_group *g = &r->groups[0];
    if (g->error_code && g->error_code != GR_GROUP_ID_NOT_FOUND) {
        print_kafka_error(c, g->error_code, GR_STR_NULL, group_what(c, group));
        cleanup_exit(c, EXIT_FAIL);
    }
    if (g->error_code == GR_GROUP_ID_NOT_FOUND) {
        g->group_state = gr_str_from("Dead");
        g->members_count = 0;
    }
    return g;
}

/* One partition a command reports on. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t committed; /* -1: none */
    int32_t member; /* index into the group's members, -1: unassigned */
    gr_reset_partition reset;
} group_partition;

typedef struct {
    group_partition *v;
    int n, cap;
} partition_list;

static group_partition *partition_entry(ctl *c, partition_list *l, const char *topic,
                                        int32_t partition)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i].partition == partition && strcmp(l->v[i].topic, topic) == 0)
            return &l->v[i];
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        group_partition *v = xalloc(c, (size_t)cap, sizeof *v);
        if (l->n)
            memcpy(v, l->v, (size_t)l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    group_partition *e = &l->v[l->n++];
    *e = (group_partition){.topic = topic, .partition = partition, .committed = -1, .member = -1,
                           .reset = {-1, -1, -1, -1}};
    return e;
}

static int cmp_group_partition(const void *a, const void *b)
{
    const group_partition *x = a, *y = b;
    int r = strcmp(x->topic, y->topic);
    return r ? r : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The group's committed offsets, into l (topic NULL: every topic; else
 * only that topic's). */
static void fetch_committed(ctl *c, const char *group, const char *topic, partition_list *l)
{
    gr_offset_fetch_request_group g;
    gr_offset_fetch_request_group_init(&g);
    g.group_id = gr_str_from(group);
    g.topics_count = -1; /* every topic */
    gr_offset_fetch_request req;
    gr_offset_fetch_request_init(&req);
    req.group_id = g.group_id;
    req.topics_count = -1;
    req.groups = &g;
    req.groups_count = 1;
    int16_t v;
    gr_offset_fetch_response *r =
        group_call(c, group, GR_API_OFFSET_FETCH, &req, offset_fetch_error, &v);
    int16_t err = offset_fetch_error(r, v);
    if (err) {
        print_kafka_error(c, err, GR_STR_NULL, group_what(c, group));
        cleanup_exit(c, EXIT_FAIL);
    }
    /* Both shapes carry the same fields: walk whichever came back. */
    int32_t nt = v >= 8 ? (r->groups_count > 0 ? r->groups[0].topics_count : 0) : r->topics_count;
    for (int32_t i = 0; i < nt; i++) {
        gr_str tname = v >= 8 ? r->groups[0].topics[i].name : r->topics[i].name;
        int32_t np = v >= 8 ? r->groups[0].topics[i].partitions_count : r->topics[i].partitions_count;
        const char *t = cstr(c, tname);
        if (!t || (topic && strcmp(t, topic) != 0))
            continue;
        for (int32_t k = 0; k < np; k++) {
            int32_t pid;
            int64_t off;
            int16_t perr;
            if (v >= 8) {
                gr_offset_fetch_response_partitions *p = &r->groups[0].topics[i].partitions[k];
                pid = p->partition_index, off = p->committed_offset, perr = p->error_code;
            } else {
                gr_offset_fetch_response_partition *p = &r->topics[i].partitions[k];
                pid = p->partition_index, off = p->committed_offset, perr = p->error_code;
            }
            if (perr || off < 0)
                continue;
            partition_entry(c, l, t, pid)->committed = off;
        }
    }
}

static node_addr broker_addr(ctl *c, gr_metadata_response *md, int32_t id)
{
    for (int32_t i = 0; i < md->brokers_count; i++)
        if (md->brokers[i].node_id == id)
            return (node_addr){id, cstr(c, md->brokers[i].host), md->brokers[i].port};
    return (node_addr){-1, NULL, 0};
}

static gr_metadata_response_topic *md_topic(gr_metadata_response *md, const char *name)
{
    for (int32_t i = 0; i < md->topics_count; i++)
        if (gr_str_eq(md->topics[i].name, name))
            return &md->topics[i];
    return NULL;
}

static int32_t md_leader(gr_metadata_response_topic *t, int32_t partition)
{
    for (int32_t i = 0; t && i < t->partitions_count; i++)
        if (t->partitions[i].partition_index == partition)
            return t->partitions[i].leader_id;
    return -1;
}

/* ListOffsets at timestamp ts (-1 latest, -2 earliest, or a time) for
 * every entry of l (sorted by topic), asked of each partition's leader;
 * out[i] gets the offset of l->v[i], -1 when unknown. */
static void list_offsets(ctl *c, gr_metadata_response *md, partition_list *l, int64_t ts,
                         int64_t *out)
{
    for (int i = 0; i < l->n; i++)
        out[i] = -1;
    bool *done = xalloc(c, (size_t)l->n, sizeof *done);
    for (int i = 0; i < l->n; i++) {
        if (done[i])
            continue;
        /* One request for every partition of this topic with this leader. */
        gr_metadata_response_topic *t = md_topic(md, l->v[i].topic);
        int32_t leader = md_leader(t, l->v[i].partition);
        gr_list_offsets_request_list_offsets_partition *ps = xalloc(c, (size_t)l->n, sizeof *ps);
        int *idx = xalloc(c, (size_t)l->n, sizeof *idx);
        int32_t np = 0;
        for (int k = i; k < l->n; k++) {
            if (done[k] || strcmp(l->v[k].topic, l->v[i].topic) != 0 ||
                md_leader(t, l->v[k].partition) != leader)
                continue;
            done[k] = true;
            gr_list_offsets_request_list_offsets_partition_init(&ps[np]);
            ps[np].partition_index = l->v[k].partition;
            ps[np].timestamp = ts;
            idx[np++] = k;
        }
        node_addr to = broker_addr(c, md, leader);
        if (leader < 0 || !to.host)
            continue; /* no leader now: the offsets stay unknown */
        gr_list_offsets_request_list_offsets_topic lt;
        gr_list_offsets_request_list_offsets_topic_init(&lt);
        lt.name = gr_str_from(l->v[i].topic);
        lt.partitions = ps;
        lt.partitions_count = np;
        gr_list_offsets_request req;
        gr_list_offsets_request_init(&req);
        req.replica_id = -1;
        req.topics = &lt;
        req.topics_count = 1;
        req.timeout_ms = ADMIN_TIMEOUT_MS;
        int16_t v;
        gr_list_offsets_response *r = call_at(c, to, GR_API_LIST_OFFSETS, &req, &v);
        for (int32_t ti = 0; ti < r->topics_count; ti++)
            for (int32_t k = 0; k < r->topics[ti].partitions_count; k++) {
                gr_list_offsets_response_list_offsets_partition_response *p =
                    &r->topics[ti].partitions[k];
                for (int32_t m = 0; m < np; m++)
                    if (ps[m].partition_index == p->partition_index && !p->error_code)
                        out[idx[m]] = p->offset;
            }
    }
}

/* The partitions assigned to a member (the consumer protocol's
 * Assignment: an int16 version, then the message). */
static gr_consumer_protocol_assignment *member_assignment(ctl *c, gr_bytes b)
{
    if (b.len < 2)
        return NULL;
    gr_reader r;
    gr_reader_init(&r, b.ptr, (size_t)b.len);
    int16_t version;
    gr_consumer_protocol_assignment *a = xalloc(c, 1, sizeof *a);
    if (gr_read_i16(&r, &version) != GR_OK || version < 0)
        return NULL;
    /* Newer versions only add fields: read them as the newest we know. */
    if (version > 3)
        version = 3;
    if (gr_consumer_protocol_assignment_decode(a, &r, version, &c->arena) != GR_OK)
        return NULL;
    return a;
}

static const char *assignment_str(ctl *c, const gr_consumer_protocol_assignment *a)
{
    if (!a)
        return NULL;
    const char *s = "";
    for (int32_t i = 0; i < a->assigned_partitions_count; i++) {
        const gr_consumer_protocol_assignment_topic_partition *tp = &a->assigned_partitions[i];
        s = fmt(c, "%s%s%s:%s", s, i ? " " : "", cstr(c, tp->topic),
                join_ids(c, tp->partitions, tp->partitions_count));
    }
    return s;
}

static void json_int_or_null(ctl *c, const char *k, int64_t v)
{
    if (v < 0)
        json_str(c, k, NULL);
    else
        json_int(c, k, v);
}

/* What `group describe` shows: the group, its members' assignments and
 * one row per partition with a commit or an owner (sorted). */
typedef struct {
    const char *group;
    int32_t coordinator;
    gr_describe_groups_response_described_group *g;
    gr_consumer_protocol_assignment **assigned; /* per member; NULL if not decodable */
    partition_list l;
    int64_t *leo; /* per row of l; -1 unknown */
} group_view;

static int64_t row_lag(const group_view *v, int i)
{
    int64_t committed = v->l.v[i].committed;
    return committed >= 0 && v->leo[i] >= 0 ? v->leo[i] - committed : -1;
}

static const char *row_member(ctl *c, const group_view *v, int i)
{
    int32_t m = v->l.v[i].member;
    return m >= 0 ? cstr(c, v->g->members[m].member_id) : NULL;
}

static void describe_group_json(ctl *c, const group_view *v)
{
    const gr_describe_groups_response_described_group *g = v->g;
    json_open(c, '{');
    json_str(c, "group", v->group);
    json_gstr(c, "state", g->group_state);
    json_gstr(c, "protocol_type", g->protocol_type);
    json_gstr(c, "protocol", g->protocol_data);
    json_int(c, "coordinator", v->coordinator);
    json_key(c, "members");
    json_open(c, '[');
    for (int32_t m = 0; m < g->members_count; m++) {
        gr_describe_groups_response_described_group_member *mb = &g->members[m];
        json_open(c, '{');
        json_gstr(c, "member_id", mb->member_id);
        json_gstr(c, "group_instance_id", mb->group_instance_id);
        json_gstr(c, "client_id", mb->client_id);
        json_gstr(c, "host", mb->client_host);
        json_key(c, "assignment");
        json_open(c, '[');
        for (int32_t i = 0; v->assigned[m] && i < v->assigned[m]->assigned_partitions_count; i++) {
            gr_consumer_protocol_assignment_topic_partition *tp =
                &v->assigned[m]->assigned_partitions[i];
            json_open(c, '{');
            json_gstr(c, "topic", tp->topic);
            json_ids(c, "partitions", tp->partitions, tp->partitions_count);
            json_close(c, '}');
        }
        json_close(c, ']');
        json_close(c, '}');
    }
    json_close(c, ']');
    json_key(c, "offsets");
    json_open(c, '[');
    for (int i = 0; i < v->l.n; i++) {
        json_open(c, '{');
        json_str(c, "topic", v->l.v[i].topic);
        json_int(c, "partition", v->l.v[i].partition);
        json_int_or_null(c, "committed_offset", v->l.v[i].committed);
        json_int_or_null(c, "log_end_offset", v->leo[i]);
        json_int_or_null(c, "lag", row_lag(v, i));
        json_str(c, "member_id", row_member(c, v, i));
        json_close(c, '}');
    }
    json_close(c, ']');
    json_close(c, '}');
}

/* A number for a table cell; NULL (printed "-") when negative: unknown. */
static const char *cell_i64(ctl *c, int64_t v)
{
    return v >= 0 ? fmt(c, "%lld", (long long)v) : NULL;
}

static void describe_group_text(ctl *c, const group_view *v)
{
    const gr_describe_groups_response_described_group *g = v->g;
    printf("Group: %s\nState: %s\nProtocol: %s/%s\nCoordinator: %d\nMembers: %d\n", v->group,
           cstr(c, g->group_state), g->protocol_type.len > 0 ? cstr(c, g->protocol_type) : "-",
           g->protocol_data.len > 0 ? cstr(c, g->protocol_data) : "-", v->coordinator,
           g->members_count);
    if (g->members_count) {
        printf("\n");
        table t = {.ncols = 5};
        table_row(c, &t, "CONSUMER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT");
        for (int32_t m = 0; m < g->members_count; m++) {
            gr_describe_groups_response_described_group_member *mb = &g->members[m];
            table_row(c, &t, cstr(c, mb->member_id), cstr(c, mb->group_instance_id),
                      cstr(c, mb->client_id), cstr(c, mb->client_host),
                      assignment_str(c, v->assigned[m]));
        }
        table_print(&t);
    }
    if (v->l.n) {
        printf("\n");
        table t = {.ncols = 6};
        table_row(c, &t, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                  "CONSUMER-ID");
        for (int i = 0; i < v->l.n; i++)
            table_row(c, &t, v->l.v[i].topic, fmt(c, "%d", v->l.v[i].partition),
                      cell_i64(c, v->l.v[i].committed), cell_i64(c, v->leo[i]),
                      cell_i64(c, row_lag(v, i)), row_member(c, v, i));
        table_print(&t);
    }
}

static int cmd_group_describe(ctl *c)
{
    group_view v = {.group = c->args[0]};
    v.coordinator = find_coordinator(c, v.group).id;
    v.g = describe_group(c, v.group);
    fetch_committed(c, v.group, NULL, &v.l);
    if (gr_str_eq(v.g->group_state, "Dead") && v.l.n == 0)
        return kafka_error(c, GR_GROUP_ID_NOT_FOUND, GR_STR_NULL, group_what(c, v.group));
    /* Only the consumer protocol's assignments are understood here. */
    bool consumer = gr_str_eq(v.g->protocol_type, "consumer");
    v.assigned = xalloc(c, (size_t)v.g->members_count, sizeof *v.assigned);
    for (int32_t m = 0; m < v.g->members_count; m++) {
        gr_consumer_protocol_assignment *a =
            consumer ? member_assignment(c, v.g->members[m].member_assignment) : NULL;
        v.assigned[m] = a;
        for (int32_t i = 0; a && i < a->assigned_partitions_count; i++)
            for (int32_t k = 0; k < a->assigned_partitions[i].partitions_count; k++)
                partition_entry(c, &v.l, cstr(c, a->assigned_partitions[i].topic),
                                a->assigned_partitions[i].partitions[k])
                    ->member = m;
    }
    if (v.l.n) /* no array at all for a group without partitions */
        qsort(v.l.v, (size_t)v.l.n, sizeof *v.l.v, cmp_group_partition);
    v.leo = xalloc(c, (size_t)v.l.n, sizeof *v.leo);
    if (v.l.n) {
        const char **names = xalloc(c, (size_t)v.l.n, sizeof *names);
        int nn = 0;
        for (int i = 0; i < v.l.n; i++)
            if (!nn || strcmp(names[nn - 1], v.l.v[i].topic) != 0)
                names[nn++] = v.l.v[i].topic;
        list_offsets(c, req_metadata(c, names, nn), &v.l, -1, v.leo);
    }
    if (c->json)
        describe_group_json(c, &v);
    else
        describe_group_text(c, &v);
    return EXIT_OK;
}

static int cmp_listed(const void *a, const void *b)
{
    const gr_list_groups_response_listed_group *x = *(gr_list_groups_response_listed_group *const *)a;
    const gr_list_groups_response_listed_group *y = *(gr_list_groups_response_listed_group *const *)b;
    return str_cmp(x->group_id, y->group_id);
}

static int cmd_group_list(ctl *c)
{
    gr_metadata_response *md = req_metadata(c, NULL, 0);
    gr_list_groups_request req;
    gr_list_groups_request_init(&req);
    req.states_filter_count = c->nstates;
    req.states_filter = xalloc(c, (size_t)c->nstates, sizeof *req.states_filter);
    for (int i = 0; i < c->nstates; i++)
        req.states_filter[i] = gr_str_from(c->states[i]);
    req.types_filter_count = 0;
    /* Each coordinator knows only its own groups: ask every broker. */
    int cap = 16, n = 0;
    gr_list_groups_response_listed_group **all = xalloc(c, (size_t)cap, sizeof *all);
    for (int32_t b = 0; b < md->brokers_count; b++) {
        node_addr to = broker_addr(c, md, md->brokers[b].node_id);
        gr_list_groups_response *r;
        int16_t v;
        for (int64_t start = wall_ms();; retry_pause()) {
            r = call_at(c, to, GR_API_LIST_GROUPS, &req, &v);
            if (!coordinator_retriable(r->error_code) || wall_ms() - start > COORDINATOR_WAIT_MS)
                break;
        }
        if (r->error_code)
            return kafka_error(c, r->error_code, GR_STR_NULL, fmt(c, "Broker %d", to.id));
        if (c->nstates && v < 4) {
            fprintf(stderr, "Error: UNSUPPORTED_VERSION: broker %d cannot filter groups by state.\n",
                    to.id);
            return EXIT_FAIL;
        }
        for (int32_t i = 0; i < r->groups_count; i++) {
            bool dup = false;
            for (int k = 0; k < n && !dup; k++)
                dup = str_cmp(all[k]->group_id, r->groups[i].group_id) == 0;
            if (dup)
                continue;
            if (n == cap) {
                gr_list_groups_response_listed_group **more = xalloc(c, (size_t)cap * 2, sizeof *more);
                memcpy(more, all, (size_t)n * sizeof *all);
                all = more;
                cap *= 2;
            }
            all[n++] = &r->groups[i];
        }
    }
    qsort(all, (size_t)n, sizeof *all, cmp_listed);
    if (c->json) {
        json_open(c, '{');
        json_key(c, "groups");
        json_open(c, '[');
        for (int i = 0; i < n; i++) {
            json_open(c, '{');
            json_gstr(c, "group", all[i]->group_id);
            json_gstr(c, "state", all[i]->group_state);
            json_gstr(c, "protocol_type", all[i]->protocol_type);
            json_close(c, '}');
        }
        json_close(c, ']');
        json_close(c, '}');
        return EXIT_OK;
    }
    table t = {.ncols = 3};
    table_row(c, &t, "GROUP", "STATE", "PROTOCOL-TYPE");
    for (int i = 0; i < n; i++)
        table_row(c, &t, cstr(c, all[i]->group_id), cstr(c, all[i]->group_state),
                  all[i]->protocol_type.len > 0 ? cstr(c, all[i]->protocol_type) : NULL);
    table_print(&t);
    return EXIT_OK;
}

static int cmd_group_reset_offsets(ctl *c)
{
    const char *group = c->args[0];
    const char *topic = c->topic;
    gr_describe_groups_response_described_group *g = describe_group(c, group);
    bool inactive = gr_str_eq(g->group_state, "Empty") || gr_str_eq(g->group_state, "Dead");
    if (!inactive) {
        const char *m = fmt(c, "Assignments can only be reset if the group '%s' is inactive, but "
                               "the current state is %s.", group, cstr(c, g->group_state));
        if (c->execute) {
            fprintf(stderr, "Error: %s\n", m);
            return EXIT_FAIL;
        }
        fprintf(stderr, "Warning: %s\n", m);
    }
    gr_metadata_response *md = req_metadata(c, &topic, 1);
    gr_metadata_response_topic *t = md_topic(md, topic);
    if (!t || t->error_code)
        return kafka_error(c, t ? t->error_code : GR_UNKNOWN_TOPIC_OR_PARTITION, GR_STR_NULL,
                           topic_what(c, topic));
    partition_list l = {0};
    for (int32_t i = 0; i < t->partitions_count; i++)
        partition_entry(c, &l, topic, t->partitions[i].partition_index);
    fetch_committed(c, group, topic, &l);
    qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_group_partition);
    int64_t *start = xalloc(c, (size_t)l.n, sizeof *start);
    int64_t *end = xalloc(c, (size_t)l.n, sizeof *end);
    int64_t *by_time = xalloc(c, (size_t)l.n, sizeof *by_time);
    list_offsets(c, md, &l, -2, start);
    list_offsets(c, md, &l, -1, end);
    if (c->reset_mode == GR_RESET_TO_DATETIME)
        list_offsets(c, md, &l, c->reset_arg, by_time);
    int64_t *target = xalloc(c, (size_t)l.n, sizeof *target);
    for (int i = 0; i < l.n; i++) {
        group_partition *e = &l.v[i];
        if (start[i] < 0 || end[i] < 0) {
            fprintf(stderr, "Error: LEADER_NOT_AVAILABLE: the offsets of %s-%d are not known; "
                            "try again.\n", topic, e->partition);
            return EXIT_FAIL;
        }
        e->reset = (gr_reset_partition){e->committed, start[i], end[i],
                                        c->reset_mode == GR_RESET_TO_DATETIME ? by_time[i] : -1};
        target[i] = gr_reset_target(c->reset_mode, c->reset_arg, &e->reset);
        if (target[i] < 0) {
            fprintf(stderr, "Error: cannot shift the offset of %s-%d: the group has no committed "
                            "offset for it.\n", topic, e->partition);
            return EXIT_FAIL;
        }
    }
    if (c->execute && l.n) {
        gr_offset_commit_request_partition *ps = xalloc(c, (size_t)l.n, sizeof *ps);
        for (int i = 0; i < l.n; i++) {
            gr_offset_commit_request_partition_init(&ps[i]);
            ps[i].partition_index = l.v[i].partition;
            ps[i].committed_offset = target[i];
            ps[i].committed_metadata = gr_str_from(""); /* as Kafka's tool: none */
        }
        gr_offset_commit_request_topic ct;
        gr_offset_commit_request_topic_init(&ct);
        ct.name = gr_str_from(topic);
        ct.partitions = ps;
        ct.partitions_count = l.n;
        gr_offset_commit_request req;
        gr_offset_commit_request_init(&req);
        /* As Kafka's admin client: no generation, no member. */
        req.group_id = gr_str_from(group);
        req.generation_id_or_member_epoch = -1;
        req.member_id = gr_str_from("");
        req.topics = &ct;
        req.topics_count = 1;
        int16_t v;
        gr_offset_commit_response *r =
            group_call(c, group, GR_API_OFFSET_COMMIT, &req, offset_commit_error, &v);
        for (int32_t i = 0; i < r->topics_count; i++)
            for (int32_t k = 0; k < r->topics[i].partitions_count; k++)
                if (r->topics[i].partitions[k].error_code)
                    return kafka_error(c, r->topics[i].partitions[k].error_code, GR_STR_NULL,
                                       fmt(c, "Group '%s' (%s-%d)", group, topic,
                                           r->topics[i].partitions[k].partition_index));
    }
    if (c->json) {
        json_open(c, '{');
        json_str(c, "group", group);
        json_str(c, "topic", topic);
        json_bool(c, "executed", c->execute);
        json_key(c, "partitions");
        json_open(c, '[');
        for (int i = 0; i < l.n; i++) {
            json_open(c, '{');
            json_int(c, "partition", l.v[i].partition);
            json_int_or_null(c, "current_offset", l.v[i].committed);
            json_int(c, "new_offset", target[i]);
            json_close(c, '}');
        }
        json_close(c, ']');
        json_close(c, '}');
        return EXIT_OK;
    }
    table tb = {.ncols = 5};
    table_row(c, &tb, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET");
    for (int i = 0; i < l.n; i++)
        table_row(c, &tb, group, topic, fmt(c, "%d", l.v[i].partition),
                  cell_i64(c, l.v[i].committed), cell_i64(c, target[i]));
    table_print(&tb);
    if (!c->execute)
        printf("\nDry run: nothing was changed. Add --execute to commit these offsets.\n");
    return EXIT_OK;
}

static int cmd_group_delete(ctl *c)
{
    int status = EXIT_OK;
    if (c->json) {
        json_open(c, '{');
        json_key(c, "groups");
        json_open(c, '[');
    }
    for (int i = 0; i < c->nargs; i++) {
        const char *group = c->args[i];
        gr_str name = gr_str_from(group);
        gr_delete_groups_request req;
        gr_delete_groups_request_init(&req);
        req.groups_names = &name;
        req.groups_names_count = 1;
        int16_t v;
        gr_delete_groups_response *r =
            group_call(c, group, GR_API_DELETE_GROUPS, &req, delete_groups_error, &v);
        int16_t err = r->results_count < 1 ? GR_UNKNOWN_SERVER_ERROR : r->results[0].error_code;
        if (c->json) {
            json_open(c, '{');
            json_str(c, "group", group);
            json_str(c, "error", err ? gr_kafka_error_name(err) : NULL);
            json_close(c, '}');
        } else if (!err) {
            printf("Deleted group %s.\n", group);
        }
        if (err) {
            print_kafka_error(c, err, GR_STR_NULL, group_what(c, group));
            status = EXIT_FAIL;
        }
    }
    if (c->json) {
        json_close(c, ']');
        json_close(c, '}');
    }
    return status;
}

/* ---- log directories ---- */

/* DescribeLogDirs of every directory on one broker, asked of that broker
 * itself (each broker answers only for its own disks); exits with a
 * message when it cannot be reached. */
static gr_describe_log_dirs_response *req_describe_log_dirs(ctl *c,
                                                            const gr_metadata_response_broker *b)
{
    gr_describe_log_dirs_request req;
    gr_describe_log_dirs_request_init(&req);
    req.topics_count = -1; /* null: every partition */
    return call_at(c, (node_addr){b->node_id, cstr(c, b->host), b->port}, GR_API_DESCRIBE_LOG_DIRS,
                   &req, NULL);
}

static bool partition_wanted(ctl *c, gr_str topic)
{
    return !c->topic || str_cmp(topic, gr_str_from(c->topic)) == 0;
}

/* One broker's directories as kafka-log-dirs.sh --describe writes them
 * (errors by their Kafka name rather than a Java class). */
static void log_dirs_json(ctl *c, int32_t broker, const gr_describe_log_dirs_response *r)
{
    json_open(c, '{');
    json_int(c, "broker", broker);
    json_key(c, "logDirs");
    json_open(c, '[');
    for (int32_t i = 0; i < r->results_count; i++) {
        const gr_describe_log_dirs_response_describe_log_dirs_result *d = &r->results[i];
        json_open(c, '{');
        json_gstr(c, "logDir", d->log_dir);
        json_str(c, "error", d->error_code ? gr_kafka_error_name(d->error_code) : NULL);
        json_key(c, "partitions");
        json_open(c, '[');
        for (int32_t k = 0; k < d->topics_count; k++) {
            const gr_describe_log_dirs_response_describe_log_dirs_topic *t = &d->topics[k];
            for (int32_t j = 0; partition_wanted(c, t->name) && j < t->partitions_count; j++) {
                json_open(c, '{');
                json_str(c, "partition",
                         fmt(c, "%s-%d", cstr(c, t->name), t->partitions[j].partition_index));
                json_int(c, "size", t->partitions[j].partition_size);
                json_int(c, "offsetLag", t->partitions[j].offset_lag);
                json_bool(c, "isFuture", t->partitions[j].is_future_key);
                json_close(c, '}');
            }
        }
        json_close(c, ']');
        json_close(c, '}');
    }
    json_close(c, ']');
    json_close(c, '}');
}

static void log_dirs_rows(ctl *c, table *t, int32_t broker, const gr_describe_log_dirs_response *r)
{
    const char *id = fmt(c, "%d", broker);
    for (int32_t i = 0; i < r->results_count; i++) {
        const gr_describe_log_dirs_response_describe_log_dirs_result *d = &r->results[i];
        const char *dir = cstr(c, d->log_dir);
        const char *error = d->error_code ? gr_kafka_error_name(d->error_code) : NULL;
        int rows = 0;
        for (int32_t k = 0; k < d->topics_count; k++) {
            const gr_describe_log_dirs_response_describe_log_dirs_topic *tp = &d->topics[k];
            for (int32_t j = 0; partition_wanted(c, tp->name) && j < tp->partitions_count; j++) {
                const gr_describe_log_dirs_response_describe_log_dirs_partition *p =
                    &tp->partitions[j];
                table_row(c, t, id, dir, error,
                          fmt(c, "%s-%d", cstr(c, tp->name), p->partition_index),
                          fmt(c, "%lld", (long long)p->partition_size),
                          fmt(c, "%lld", (long long)p->offset_lag),
                          p->is_future_key ? "true" : "false");
                rows++;
            }
        }
        if (!rows) /* a directory with nothing to show still gets its line */
            table_row(c, t, id, dir, error, NULL, NULL, NULL, NULL);
    }
}

static int cmd_log_dirs_describe(ctl *c)
{
    gr_metadata_response *md = req_metadata(c, NULL, 0);
    int32_t only = c->broker ? (int32_t)strtol(c->broker, NULL, 10) : -1;
    bool found = false;
    for (int32_t i = 0; i < md->brokers_count; i++)
        found |= md->brokers[i].node_id == only;
    if (c->broker && !found) {
        fprintf(stderr, "Error: broker %d is not in the cluster (brokers: ", only);
        for (int32_t i = 0; i < md->brokers_count; i++)
            fprintf(stderr, "%s%d", i ? "," : "", md->brokers[i].node_id);
        fprintf(stderr, ")\n");
        return EXIT_FAIL;
    }
    table t = {.ncols = 7};
    table_row(c, &t, "BROKER", "LOG-DIR", "ERROR", "PARTITION", "SIZE", "OFFSET-LAG", "FUTURE");
    if (c->json) {
        json_open(c, '{');
        json_int(c, "version", 1);
        json_key(c, "brokers");
        json_open(c, '[');
    }
    for (int32_t i = 0; i < md->brokers_count; i++) {
        const gr_metadata_response_broker *b = &md->brokers[i];
        if (c->broker && b->node_id != only)
            continue;
        gr_describe_log_dirs_response *r = req_describe_log_dirs(c, b);
        if (r->error_code)
            return kafka_error(c, r->error_code, GR_STR_NULL,
                               fmt(c, "the log directories of broker %d", b->node_id));
        if (c->json)
            log_dirs_json(c, b->node_id, r);
        else
            log_dirs_rows(c, &t, b->node_id, r);
    }
    if (c->json) {
        json_close(c, ']');
        json_close(c, '}');
    } else {
        table_print(&t);
    }
    return EXIT_OK;
}

/* ---- the command table ---- */

static const command commands[] = {
    {"topic", "create",
     "NAME [-p N] [-r R] [-c KEY=VALUE]... [--if-not-exists] [--validate-only]", "create a topic", 1, 1,
     O_PARTITIONS | O_REPLICATION | O_CONFIG | O_IF_NOT_EXISTS | O_VALIDATE_ONLY,
     cmd_topic_create},
    {"topic", "list", "[--include-internal]", "list topic names", 0, 0, O_INTERNAL, cmd_topic_list},
    {"topic", "describe", "[NAME...] [--include-internal]",
     "partitions, leaders, epochs, replicas, ISR and configs of topics (default all)", 0, -1,
     O_INTERNAL, cmd_topic_describe},
    {"topic", "delete", "NAME", "delete a topic", 1, 1, 0, cmd_topic_delete},
    {"topic", "add-partitions", "NAME -p N [--validate-only]", "raise a topic's partition count to N", 1, 1,
     O_PARTITIONS | O_VALIDATE_ONLY, cmd_topic_add_partitions},
    {"config", "describe", "(--topic NAME | --broker ID) [--all]",
     "configs of a topic or broker (overrides only, unless --all)", 0, 0,
     O_TOPIC | O_BROKER | O_ALL, cmd_config_describe},
    {"config", "set", "(--topic NAME | --broker ID) KEY=VALUE...", "set configs", 1, -1,
     O_TOPIC | O_BROKER, cmd_config_set},
    {"config", "delete", "(--topic NAME | --broker ID) KEY...",
     "remove config overrides (back to the default)", 1, -1, O_TOPIC | O_BROKER,
     cmd_config_delete},
    {"group", "list", "[--state STATE[,STATE...]]", "consumer groups of every broker, with states",
     0, 0, O_STATE, cmd_group_list},
    {"group", "describe", "GROUP",
     "a group's state, members, assignment, committed offsets and lag", 1, 1, 0,
     cmd_group_describe},
    {"group", "reset-offsets",
     "GROUP --topic NAME (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO8601 | "
     "--shift-by N) [--execute]",
     "plan (or with --execute commit) new committed offsets of an inactive group", 1, 1,
     O_TOPIC | O_RESET_MODES | O_EXECUTE, cmd_group_reset_offsets},
    {"group", "delete", "GROUP...", "delete groups that have no members", 1, -1, 0,
     cmd_group_delete},
    {"cluster", "describe", "", "cluster id, controller and brokers", 0, 0, 0,
     cmd_cluster_describe},
    {"quorum", "describe", "",
     "metadata quorum: leader, epoch, high watermark, voters' and observers' lag", 0, 0, 0,
     cmd_quorum_describe},
    {"log-dirs", "describe", "[--broker ID] [--topic NAME]",
     "every broker's log directories and the partitions in them, with their sizes", 0, 0,
     O_TOPIC | O_BROKER, cmd_log_dirs_describe},
};
static const size_t ncommands = sizeof commands / sizeof commands[0];

/* ---- usage ---- */

static void print_options(FILE *f, unsigned bits)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option *o = &options[i];
        if (!(o->bit & bits))
            continue;
        char spec[64];
        if (o->shrt)
            snprintf(spec, sizeof spec, "-%c, --%s%s%s", o->shrt, o->lng, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(spec, sizeof spec, "    --%s%s%s", o->lng, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(f, "  %-34s %s\n", spec, o->help);
    }
}

static void usage_tool(FILE *f, const char *group)
{
    fprintf(f, "usage: gregorctl [-b HOST:PORT] [--json] COMMAND [ARGS...]\n\n"
               "Administers a Gregor (Kafka-compatible) cluster through one of its brokers.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < ncommands; i++)
        if (!group || strcmp(group, commands[i].group) == 0) {
            char words[48];
            snprintf(words, sizeof words, "%s %s", commands[i].group, commands[i].verb);
            fprintf(f, "  %-24s %s\n", words, commands[i].summary);
        }
    fprintf(f, "\nOptions:\n");
    print_options(f, O_GLOBAL);
    fprintf(f, "\n'gregorctl GROUP VERB --help' describes a command.\n");
}

static void usage_command(FILE *f, const command *cmd)
{
    fprintf(f, "usage: gregorctl [-b HOST:PORT] [--json] %s %s%s%s\n\n%c%s.\n", cmd->group,
            cmd->verb, *cmd->synopsis ? " " : "", cmd->synopsis,
            cmd->summary[0] - 'a' + 'A', cmd->summary + 1);
    fprintf(f, "\nOptions:\n");
    print_options(f, cmd->opts | O_GLOBAL);
}

static int usage_error(const command *cmd, const char *f, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const command *cmd, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    fputs("gregorctl: ", stderr);
    vfprintf(stderr, f, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    if (cmd)
        usage_command(stderr, cmd);
    else
        usage_tool(stderr, NULL);
    return EXIT_USAGE;
}

/* ---- command line ---- */

static const option *find_option(const char *arg, const char **value)
{
    *value = NULL;
    if (arg[1] != '-') {
        for (size_t i = 0; i < NOPTIONS; i++)
            if (options[i].shrt && options[i].shrt == arg[1]) {
                *value = arg[2] ? arg + 2 : NULL; /* -p3 */
                return &options[i];
            }
        return NULL;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].lng) == len && strncmp(options[i].lng, name, len) == 0) {
            *value = eq ? eq + 1 : NULL;
            return &options[i];
        }
    return NULL;
}

/* Kafka's group states, for --state (matched without regard to case). */
static const char *const group_states[] = {"PreparingRebalance", "CompletingRebalance", "Stable",
                                           "Dead", "Empty", "Assigning", "Reconciling", NULL};

/* --state's comma-separated states, matched to Kafka's names without
 * regard to case; an error message or NULL. */
static const char *parse_states(ctl *c, const char *v)
{
    size_t max = 1;
    for (const char *p = v; *p; p++)
        max += *p == ',';
    c->states = xalloc(c, max, sizeof *c->states);
    c->nstates = 0;
    for (const char *p = v;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *found = NULL;
        for (int i = 0; group_states[i] && !found; i++)
            if (strlen(group_states[i]) == len && strncasecmp(group_states[i], p, len) == 0)
                found = group_states[i];
        if (!found)
            return fmt(c, "unknown group state '%.*s' (known: PreparingRebalance, "
                          "CompletingRebalance, Stable, Empty, Dead, Assigning, Reconciling)",
                       (int)len, p);
        c->states[c->nstates++] = found;
        if (!end)
            return NULL;
        p = end + 1;
    }
}

/* Stores an option's value; an error message (for usage) or NULL. */
static const char *set_option(ctl *c, const option *o, const char *v)
{
    int64_t n;
    switch (o->bit) {
    case O_BOOTSTRAP: c->bootstrap = v; break;
    case O_JSON: c->json = true; break;
    case O_TOPIC: c->topic = v; break;
    case O_BROKER:
        if (!parse_i64(v, 0, INT32_MAX, &n))
            return fmt(c, "--broker needs a broker id, not '%s'", v);
        c->broker = v;
        break;
    case O_PARTITIONS:
        if (!parse_i64(v, -1, INT32_MAX, &n) || n == 0)
            return fmt(c, "--partitions needs a positive count, not '%s'", v);
        c->partitions = (int32_t)n;
        break;
    case O_REPLICATION:
        if (!parse_i64(v, -1, INT16_MAX, &n) || n == 0)
            return fmt(c, "--replication-factor needs a positive number, not '%s'", v);
        c->replication = (int16_t)n;
        break;
    case O_CONFIG:
        if (!strchr(v, '=') || *v == '=')
            return fmt(c, "--config needs KEY=VALUE, not '%s'", v);
        c->configs[c->nconfigs++] = v;
        break;
    case O_STATE: return parse_states(c, v);
    case O_TO_EARLIEST: c->reset_mode = GR_RESET_EARLIEST; break;
    case O_TO_LATEST: c->reset_mode = GR_RESET_LATEST; break;
    case O_TO_OFFSET:
        if (!parse_i64(v, 0, INT64_MAX, &n))
            return fmt(c, "--to-offset needs an offset, not '%s'", v);
        c->reset_mode = GR_RESET_TO_OFFSET;
        c->reset_arg = n;
        break;
    case O_SHIFT_BY:
        if (!parse_i64(v, INT64_MIN + 1, INT64_MAX, &n))
            return fmt(c, "--shift-by needs a whole number, not '%s'", v);
        c->reset_mode = GR_RESET_SHIFT_BY;
        c->reset_arg = n;
        break;
    case O_TO_DATETIME:
        if (!gr_reset_parse_datetime(v, &n))
            return fmt(c, "--to-datetime needs YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM], not '%s'", v);
        c->reset_mode = GR_RESET_TO_DATETIME;
        c->reset_arg = n;
        break;
    case O_EXECUTE: c->execute = true; break;
    default: break;
    }
    c->seen |= o->bit;
    return NULL;
}

/* Splits argv into options (stored in c) and positionals (returned). An
 * error message for usage, or NULL. */
static const char *parse_args(ctl *c, int argc, char **argv, const char ***pos, int *npos)
{
    *pos = xalloc(c, (size_t)argc, sizeof **pos);
    c->configs = xalloc(c, (size_t)argc, sizeof *c->configs);
    *npos = 0;
    bool only_positionals = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positionals || a[0] != '-' || a[1] == '\0') {
            (*pos)[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positionals = true;
            continue;
        }
        const char *v;
        const option *o = find_option(a, &v);
        if (!o)
            return fmt(c, "unknown option '%s'", a);
        if (!o->arg && v)
            return fmt(c, "option '%s' takes no value", a);
        if (o->arg && !v) {
            if (i + 1 >= argc)
                return fmt(c, "option '%s' needs %s", a, o->arg);
            v = argv[++i];
        }
        const char *err = set_option(c, o, v);
        if (err)
            return err;
    }
    return NULL;
}

/* One HOST:PORT (or [v6addr]:PORT) of len bytes at b, appended to the endpoints. */
static bool parse_endpoint(ctl *c, const char *b, size_t len)
{
    const char *colon = memrchr(b, ':', len);
    int64_t port;
    char digits[8];
    size_t plen = colon ? len - (size_t)(colon - b) - 1 : 0;
    if (!colon || colon == b || plen == 0 || plen >= sizeof digits)
        return false;
    memcpy(digits, colon + 1, plen);
    digits[plen] = '\0';
    if (!parse_i64(digits, 1, 65535, &port))
        return false;
    size_t hlen = (size_t)(colon - b);
    if (b[0] == '[' && hlen >= 2 && b[hlen - 1] == ']') {
        b++;
        hlen -= 2;
    }
    c->hosts[c->nendpoints] = gr_arena_strdup(&c->arena, b, hlen);
    c->ports[c->nendpoints++] = (int)port;
    return true;
}

static bool parse_bootstrap(ctl *c)
{
    size_t max = 1;
    for (const char *p = c->bootstrap; *p; p++)
        max += *p == ',';
    c->hosts = xalloc(c, max, sizeof *c->hosts);
    c->ports = xalloc(c, max, sizeof *c->ports);
    for (const char *p = c->bootstrap;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!parse_endpoint(c, p, len))
            return false;
        if (!end)
            return true;
        p = end + 1;
    }
}

static const command *find_command(const char *group, const char *verb)
{
    for (size_t i = 0; i < ncommands; i++)
        if (strcmp(commands[i].group, group) == 0 && verb && strcmp(commands[i].verb, verb) == 0)
            return &commands[i];
    return NULL;
}

static bool known_group(const char *group)
{
    for (size_t i = 0; i < ncommands; i++)
        if (strcmp(commands[i].group, group) == 0)
            return true;
    return false;
}

/* The checks that need to know the command; 0 or the exit status. */
static int check_command(ctl *c, const command *cmd)
{
    unsigned extra = c->seen & ~(cmd->opts | O_GLOBAL);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (extra & options[i].bit)
            return usage_error(cmd, "'%s %s' does not take --%s", cmd->group, cmd->verb,
                               options[i].lng);
    if (c->nargs < cmd->min_args || (cmd->max_args >= 0 && c->nargs > cmd->max_args))
        return usage_error(cmd, "wrong number of arguments for '%s %s'", cmd->group, cmd->verb);
    if (strcmp(cmd->group, "config") == 0 && !c->topic == !c->broker)
        return usage_error(cmd, "give exactly one of --topic NAME and --broker ID");
    if (cmd->opts & O_RESET_MODES) {
        unsigned modes = c->seen & O_RESET_MODES;
        if (!c->topic)
            return usage_error(cmd, "reset-offsets needs --topic NAME");
        if (!modes || (modes & (modes - 1)))
            return usage_error(cmd, "give exactly one of --to-earliest, --to-latest, --to-offset, "
                                    "--to-datetime and --shift-by");
    }
    if (cmd->run == cmd_topic_add_partitions && (!(c->seen & O_PARTITIONS) || c->partitions < 1))
        return usage_error(cmd, "add-partitions needs the new total count: -p N");
    for (int i = 0; cmd->run == cmd_config_set && i < c->nargs; i++)
        if (!strchr(c->args[i], '=') || c->args[i][0] == '=')
            return usage_error(cmd, "expected KEY=VALUE, not '%s'", c->args[i]);
    if (!parse_bootstrap(c))
        return usage_error(NULL, "bootstrap server '%s' is not HOST:PORT[,HOST:PORT...]", c->bootstrap);
    return 0;
}

static int run(ctl *c, int argc, char **argv)
{
    const char **pos;
    int npos;
    const char *err = parse_args(c, argc, argv, &pos, &npos);
    const command *cmd = npos >= 1 ? find_command(pos[0], npos >= 2 ? pos[1] : NULL) : NULL;
    if (err)
        return usage_error(cmd, "%s", err);
    if (c->seen & O_HELP) {
        if (cmd)
            usage_command(stdout, cmd);
        else
            usage_tool(stdout, npos >= 1 && known_group(pos[0]) ? pos[0] : NULL);
        return EXIT_OK;
    }
    if (!cmd) {
        if (npos == 0)
            return usage_error(NULL, "no command given");
        if (!known_group(pos[0]))
            return usage_error(NULL, "unknown command '%s'", pos[0]);
        return usage_error(NULL, "unknown command '%s %s'", pos[0], npos >= 2 ? pos[1] : "");
    }
    c->args = pos + 2;
    c->nargs = npos - 2;
    int status = check_command(c, cmd);
    return status ? status : cmd->run(c);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("gregorctl %s\n", GR_VERSION);
        return EXIT_OK;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The client logs connection trouble as warnings; we report it ourselves. */
    gr_logging_set_level(GR_LOGGING_ERROR);
    ctl c = {.partitions = -1, .replication = -1};
    gr_arena_init(&c.arena);
    const char *env = getenv("GREGOR_BOOTSTRAP");
    c.bootstrap = env && *env ? env : DEFAULT_BOOTSTRAP;
    int status = run(&c, argc, argv);
    cleanup_exit(&c, status);
    return status;
}
