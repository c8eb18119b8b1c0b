/*
 * config.h - Kafka-style configuration for the broker and the controller.
 *
 * Each binary describes its keys in a static definition table (name, type,
 * default, bounds, one line of documentation, optional validator) and hands
 * it to gr_config_new(). Values then come from three sources, from lowest to
 * highest precedence:
 *
 *   1. environment variables  GREGOR_<KEY>: node.id -> GREGOR_NODE_ID
 *      (upper case, '.' and '-' become '_'). Each defined key is mapped to
 *      its variable name and that name is looked up, so keys that contain
 *      underscores are never ambiguous.
 *   2. the file given by --config FILE, in Java .properties syntax, the same
 *      syntax as Kafka's server.properties.
 *   3. --override key=value on the command line (repeatable).
 *
 * A value is checked when it is set - type, bounds, validator - so an error
 * names the key, the value and where it came from. Invalid values are fatal
 * for the load; unknown keys are only warned about and kept (see
 * gr_config_original), as Kafka does. Whether a key without a default must
 * be set is the caller's decision: check gr_config_is_set() or
 * gr_config_str() != NULL after loading.
 *
 * Reading a key that is not in the table, with a getter of the wrong type,
 * or a numeric/bool key that has neither a value nor a default is a
 * programming error: the getter logs it and calls abort().
 *
 * A gr_config is filled on one thread during start-up and only read after
 * that; the getters may then be called from any thread. The definition
 * table is not copied and must outlive the gr_config (it is normally a
 * static const array). Strings returned by getters are owned by the
 * gr_config and stay valid until the key is set again or the gr_config is
 * freed.
 *
 * The module also parses the two structured values both binaries need:
 * listener lists (PLAINTEXT://host:9092,...) and controller.quorum.voters
 * (1@host:9093,...).
 */
#ifndef GR_CONFIG_H
#define GR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GR_CFG_INT,      /* int32, decimal with optional sign */
    GR_CFG_LONG,     /* int64, decimal with optional sign */
    GR_CFG_BOOL,     /* true / false, any case */
    GR_CFG_STRING,   /* any text, kept as given */
    GR_CFG_LIST,     /* comma-separated; items are trimmed, empty items dropped */
    GR_CFG_DOUBLE,   /* finite floating point */
    GR_CFG_PASSWORD, /* like STRING, but printed as [hidden] in logs */
} gr_config_type;

/* Where an effective value came from, in increasing precedence. */
typedef enum {
    GR_CFG_SRC_DEFAULT,
    GR_CFG_SRC_ENV,
    GR_CFG_SRC_FILE,
    GR_CFG_SRC_OVERRIDE,
} gr_config_source;

/* Returns 0 if value is acceptable, otherwise non-zero after writing a short
 * reason (without the key or value, which the caller adds) into err. */
typedef int (*gr_config_validator)(const char *value, char *err, size_t errlen);

typedef struct {
    const char *name;
    gr_config_type type;
    const char *dflt; /* default as text; NULL: no default (unset until a source sets it) */
    /* Inclusive bounds for INT, LONG and DOUBLE. min == max == 0 means only
     * the type's own range applies. DOUBLE bounds are whole numbers; use a
     * validator for anything finer. */
    int64_t min, max;
    const char *doc;              /* one line, for --help style listings */
    gr_config_validator validate; /* optional; runs after the type and bounds checks */
} gr_config_def;

typedef struct gr_config gr_config;

/* NULL on allocation failure (logged). An invalid table (duplicate names,
 * two keys with the same environment name, a default that does not pass its
 * own checks) is a programming error and aborts. */
gr_config *gr_config_new(const gr_config_def *defs, size_t ndefs);
void gr_config_free(gr_config *c);

/*
 * Loads the environment (envp may be NULL), then --config FILE (or
 * --config=FILE, or a single positional FILE as kafka-server-start takes it),
 * then every --override key=value (or --override=key=value).
 * argv[0] is the program name. --help and --version are the caller's to
 * handle before calling this. Returns 0, or -1 after logging every problem
 * found: an unrecognised argument (with a usage hint), an unreadable file,
 * a syntax error in the file, an invalid value.
 */
int gr_config_load(gr_config *c, int argc, char **argv, char **envp);

/* Loads one .properties file with source GR_CFG_SRC_FILE. 0 or -1 (logged). */
int gr_config_load_file(gr_config *c, const char *path);

/*
 * Sets key from src (not GR_CFG_SRC_DEFAULT). A value from a lower-precedence
 * source than the key's current one is still checked but does not replace
 * it; the same or a higher source replaces it. Returns 0 (also for an
 * unknown key, which is warned about and kept) or -1 for an invalid value
 * (logged, naming key, value and source; the previous value stays).
 */
int gr_config_set(gr_config *c, const char *key, const char *value, gr_config_source src);

int32_t gr_config_int(const gr_config *c, const char *key);
int64_t gr_config_long(const gr_config *c, const char *key); /* LONG or INT keys */
bool gr_config_bool(const gr_config *c, const char *key);
double gr_config_double(const gr_config *c, const char *key);
/* The effective value as text, for any type; NULL if unset with no default. */
const char *gr_config_str(const gr_config *c, const char *key);
/* LIST keys: the items (NULL-terminated array) and their count in *n. */
const char *const *gr_config_list(const gr_config *c, const char *key, size_t *n);
/* True if any source set the key explicitly (even to its default value). */
bool gr_config_is_set(const gr_config *c, const char *key);
gr_config_source gr_config_get_source(const gr_config *c, const char *key);
/* The text any source set for key, defined or not; NULL if none did.
 * This is how unknown keys that were kept can be read. */
const char *gr_config_original(const gr_config *c, const char *key);

const char *gr_config_source_name(gr_config_source src); /* "default", "env", ... */

/* Logs every defined key's effective value and source at INFO, one line each
 * in name order, then the unknown keys that were set. */
void gr_config_log(const gr_config *c, const char *subsystem);

/* ---- structured values ---- */

typedef struct {
    char name[32];  /* upper case: [A-Z0-9_]+ */
    char host[256]; /* "" means all interfaces; IPv6 without brackets */
    int port;       /* 0..65535; 0 asks for an ephemeral port */
} gr_listener;

/*
 * Parses NAME://host:port[,NAME://host:port...]. Names may be given in any
 * case and are upper-cased (as Kafka does); hosts may be empty, a name, an
 * IPv4 address or a bracketed IPv6 literal. Names must be unique and so
 * must non-zero ports. Whitespace around items is ignored; "" gives 0
 * listeners. Returns the count, or -1 with a reason in err.
 */
int gr_listeners_parse(const char *value, gr_listener *out, int max, char *err, size_t errlen);

typedef struct {
    int32_t id;
    char host[256]; /* IPv6 without brackets */
    int port;       /* 1..65535 */
} gr_voter;

/* Parses controller.quorum.voters: id@host:port[,...], ids >= 0 and unique,
 * host required. "" gives 0 voters. Returns the count, or -1 with a reason. */
int gr_voters_parse(const char *value, gr_voter *out, int max, char *err, size_t errlen);

#endif
