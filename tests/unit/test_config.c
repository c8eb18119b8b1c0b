/*
 * test_config.c - common/config: .properties syntax, source precedence,
 * value checking, the environment mapping, listeners and voters.
 *
 * Every test runs with stderr captured into a temporary file (fixture), so
 * the tests are quiet and can assert on what was logged.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/logging.h"
#include "tests/unit/suites.h"

/* ---- fixture: capture stderr ---- */

static int saved_stderr = -1;

/* stderr goes to an already-unlinked temporary file, so nothing is left
 * behind even by the tests that end in abort(). */
static void capture_setup(void)
{
    char path[32] = "/tmp/grcfglogXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    close(fd);
    gr_logging_set_level(GR_LOGGING_INFO);
}

static void capture_teardown(void)
{
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
}

/* Everything logged so far; the caller frees it. */
static char *logged(void)
{
    static char buf[65536];
    ssize_t n = pread(STDERR_FILENO, buf, sizeof buf - 1, 0);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    char *s = strdup(buf);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* True if the log so far contains every given fragment on one line. */
static bool log_line_has(const char *a, const char *b, const char *c)
{
    char *all = logged();
    bool found = false;
    for (char *line = strtok(all, "\n"); line && !found; line = strtok(NULL, "\n"))
        found = strstr(line, a) && (!b || strstr(line, b)) && (!c || strstr(line, c));
    free(all);
    return found;
}

/* Truncates the captured log, so a test can look at one step's output. */
static void log_reset(void)
{
    ck_assert_int_eq(ftruncate(STDERR_FILENO, 0), 0);
    ck_assert_int_eq(lseek(STDERR_FILENO, 0, SEEK_SET), 0);
}

/* ---- helpers ---- */

static int validate_even(const char *v, char *err, size_t errlen)
{
    if (atoi(v) % 2 != 0) {
        snprintf(err, errlen, "must be even");
        return -1;
    }
    return 0;
}

static const gr_config_def defs[] = {
    {.name = "node.id", .type = GR_CFG_INT, .dflt = "-1", .min = -1, .max = INT32_MAX, .doc = "node id"},
    {.name = "num.partitions", .type = GR_CFG_INT, .dflt = "1", .min = 1, .max = 10, .doc = "partitions"},
    {.name = "plain.int", .type = GR_CFG_INT, .dflt = "0", .doc = "unbounded int"},
    {.name = "plain.long", .type = GR_CFG_LONG, .dflt = "0", .doc = "unbounded long"},
    {.name = "log.retention.ms", .type = GR_CFG_LONG, .dflt = "604800000", .min = -1, .max = INT64_MAX,
     .doc = "retention"},
    {.name = "auto.create.topics.enable", .type = GR_CFG_BOOL, .dflt = "true", .doc = "bool"},
    {.name = "ratio", .type = GR_CFG_DOUBLE, .dflt = "0.5", .min = 0, .max = 1, .doc = "ratio"},
    {.name = "plain.double", .type = GR_CFG_DOUBLE, .dflt = "1.5", .doc = "double"},
    {.name = "listeners", .type = GR_CFG_STRING, .dflt = "PLAINTEXT://:9092", .doc = "listeners"},
    {.name = "log.dirs", .type = GR_CFG_LIST, .dflt = " /tmp/a , /tmp/b,", .doc = "dirs"},
    {.name = "advertised.listeners", .type = GR_CFG_STRING, .doc = "no default"},
    {.name = "required.int", .type = GR_CFG_INT, .doc = "no default"},
    {.name = "sasl.password", .type = GR_CFG_PASSWORD, .doc = "secret"},
    {.name = "even.num", .type = GR_CFG_INT, .dflt = "2", .doc = "even", .validate = validate_even},
    {.name = "foo_bar.baz", .type = GR_CFG_STRING, .doc = "underscore key"},
    {.name = "a", .type = GR_CFG_STRING, .doc = "test"},
    {.name = "b", .type = GR_CFG_STRING, .doc = "test"},
    {.name = "c", .type = GR_CFG_STRING, .doc = "test"},
};
#define NDEFS (sizeof defs / sizeof defs[0])

static gr_config *new_config(void)
{
    gr_config *c = gr_config_new(defs, NDEFS);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Writes text to a new temporary file; path receives its name. */
static void write_temp(char path[32], const char *text)
{
    strcpy(path, "/tmp/grcfgXXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Loads text as a properties file into c; returns gr_config_load_file's result. */
static int load_text(gr_config *c, const char *text)
{
    char path[32];
    write_temp(path, text);
    int rc = gr_config_load_file(c, path);
    unlink(path);
    return rc;
}

/* ---- defaults and getters ---- */

START_TEST(test_defaults)
{
    gr_config *c = new_config();
    ck_assert_int_eq(gr_config_int(c, "node.id"), -1);
    ck_assert_int_eq(gr_config_long(c, "log.retention.ms"), 604800000LL);
    ck_assert_int_eq(gr_config_long(c, "node.id"), -1); /* long getter widens INT keys */
    ck_assert(gr_config_bool(c, "auto.create.topics.enable"));
    ck_assert_double_eq(gr_config_double(c, "ratio"), 0.5);
    ck_assert_str_eq(gr_config_str(c, "listeners"), "PLAINTEXT://:9092");
    ck_assert_str_eq(gr_config_str(c, "node.id"), "-1");
    ck_assert_ptr_null(gr_config_str(c, "advertised.listeners"));
    ck_assert(!gr_config_is_set(c, "node.id"));
    ck_assert(!gr_config_is_set(c, "advertised.listeners"));
    ck_assert_int_eq(gr_config_get_source(c, "node.id"), GR_CFG_SRC_DEFAULT);
    ck_assert_ptr_null(gr_config_original(c, "node.id"));

    size_t n = 99;
    const char *const *dirs = gr_config_list(c, "log.dirs", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(dirs[0], "/tmp/a");
    ck_assert_str_eq(dirs[1], "/tmp/b");
    ck_assert_ptr_null(dirs[2]);
    gr_config_free(c);
}
END_TEST

START_TEST(test_set_and_is_set)
{
    gr_config *c = new_config();
    ck_assert_int_eq(gr_config_set(c, "node.id", "-1", GR_CFG_SRC_FILE), 0);
    ck_assert(gr_config_is_set(c, "node.id")); /* explicitly set, even to the default */
    ck_assert_str_eq(gr_config_original(c, "node.id"), "-1");
    ck_assert_int_eq(gr_config_set(c, "advertised.listeners", "PLAINTEXT://h:1", GR_CFG_SRC_OVERRIDE), 0);
    ck_assert_str_eq(gr_config_str(c, "advertised.listeners"), "PLAINTEXT://h:1");
    ck_assert_int_eq(gr_config_set(c, "log.dirs", "", GR_CFG_SRC_FILE), 0);
    size_t n = 99;
    const char *const *dirs = gr_config_list(c, "log.dirs", &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(dirs[0]);
    ck_assert_int_eq(gr_config_set(c, "log.dirs", "x,, y ,", GR_CFG_SRC_FILE), 0);
    dirs = gr_config_list(c, "log.dirs", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(dirs[0], "x");
    ck_assert_str_eq(dirs[1], "y");
    /* DEFAULT is not a source one can set from */
    ck_assert_int_eq(gr_config_set(c, "node.id", "3", GR_CFG_SRC_DEFAULT), -1);
    ck_assert_int_eq(gr_config_int(c, "node.id"), -1);
    gr_config_free(c);
}
END_TEST

/* ---- numbers and bools ---- */

START_TEST(test_int_parsing)
{
    gr_config *c = new_config();
    static const struct {
        const char *key, *value;
        int ok;
        int64_t want;
    } cases[] = {
        {"plain.int", "42", 1, 42},
        {"plain.int", "+42", 1, 42},
        {"plain.int", "-42", 1, -42},
        {"plain.int", " 7 ", 1, 7},
        {"plain.int", "2147483647", 1, INT32_MAX},
        {"plain.int", "-2147483648", 1, INT32_MIN},
        {"plain.int", "2147483648", 0, 0},
        {"plain.int", "-2147483649", 0, 0},
        {"plain.int", "99999999999999999999999", 0, 0},
        {"plain.int", "", 0, 0},
        {"plain.int", " ", 0, 0},
        {"plain.int", "-", 0, 0},
        {"plain.int", "12x", 0, 0},
        {"plain.int", "1 2", 0, 0},
        {"plain.int", "0x10", 0, 0},
        {"plain.int", "1e3", 0, 0},
        {"plain.int", "abc", 0, 0},
        {"num.partitions", "1", 1, 1},
        {"num.partitions", "10", 1, 10},
        {"num.partitions", "0", 0, 0},
        {"num.partitions", "11", 0, 0},
        {"node.id", "-2", 0, 0},
        {"plain.long", "9223372036854775807", 1, INT64_MAX},
        {"plain.long", "-9223372036854775808", 1, INT64_MIN},
        {"plain.long", "9223372036854775808", 0, 0},
        {"plain.long", "-9223372036854775809", 0, 0},
        {"log.retention.ms", "-1", 1, -1},
        {"log.retention.ms", "-2", 0, 0},
        {"even.num", "4", 1, 4},
        {"even.num", "5", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        log_reset();
        int rc = gr_config_set(c, cases[i].key, cases[i].value, GR_CFG_SRC_OVERRIDE);
        ck_assert_msg(rc == (cases[i].ok ? 0 : -1), "%s=%s gave %d", cases[i].key, cases[i].value, rc);
        if (cases[i].ok) {
            ck_assert_int_eq(gr_config_long(c, cases[i].key), cases[i].want);
        } else {
            /* the error names the key, the value and the source */
            char quoted[64];
            snprintf(quoted, sizeof quoted, "'%s'", cases[i].value);
            ck_assert_msg(log_line_has(cases[i].key, quoted, "override"), "no error logged for %s=%s",
                          cases[i].key, cases[i].value);
        }
    }
    /* a failed set keeps the previous value */
    ck_assert_int_eq(gr_config_set(c, "num.partitions", "5", GR_CFG_SRC_OVERRIDE), 0);
    ck_assert_int_eq(gr_config_set(c, "num.partitions", "50", GR_CFG_SRC_OVERRIDE), -1);
    ck_assert_int_eq(gr_config_int(c, "num.partitions"), 5);
    ck_assert_int_eq(gr_config_get_source(c, "num.partitions"), GR_CFG_SRC_OVERRIDE);
    log_reset();
    ck_assert_int_eq(gr_config_set(c, "even.num", "7", GR_CFG_SRC_OVERRIDE), -1);
    ck_assert(log_line_has("even.num", "'7'", "must be even"));
    gr_config_free(c);
}
END_TEST

START_TEST(test_bool_and_double_parsing)
{
    gr_config *c = new_config();
    const char *k = "auto.create.topics.enable";
    ck_assert_int_eq(gr_config_set(c, k, "FALSE", GR_CFG_SRC_FILE), 0);
    ck_assert(!gr_config_bool(c, k));
    ck_assert_int_eq(gr_config_set(c, k, "True", GR_CFG_SRC_FILE), 0);
    ck_assert(gr_config_bool(c, k));
    ck_assert_int_eq(gr_config_set(c, k, "false ", GR_CFG_SRC_FILE), 0);
    ck_assert(!gr_config_bool(c, k));
    static const char *const bad_bools[] = {"yes", "1", "0", "", "t", "truee", "on"};
    for (size_t i = 0; i < sizeof bad_bools / sizeof bad_bools[0]; i++)
        ck_assert_msg(gr_config_set(c, k, bad_bools[i], GR_CFG_SRC_FILE) == -1, "accepted '%s'", bad_bools[i]);
    ck_assert(!gr_config_bool(c, k));

    ck_assert_int_eq(gr_config_set(c, "ratio", "0.75", GR_CFG_SRC_FILE), 0);
    ck_assert_double_eq(gr_config_double(c, "ratio"), 0.75);
    ck_assert_int_eq(gr_config_set(c, "ratio", "1", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(c, "ratio", "0", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(c, "plain.double", "-2.5e3", GR_CFG_SRC_FILE), 0);
    ck_assert_double_eq(gr_config_double(c, "plain.double"), -2500.0);
    static const char *const bad_doubles[] = {"abc", "", "1.5x", "nan", "inf", "-Infinity", "0x1p3", "1e999"};
    for (size_t i = 0; i < sizeof bad_doubles / sizeof bad_doubles[0]; i++)
        ck_assert_msg(gr_config_set(c, "plain.double", bad_doubles[i], GR_CFG_SRC_FILE) == -1, "accepted '%s'",
                      bad_doubles[i]);
    ck_assert_int_eq(gr_config_set(c, "ratio", "1.01", GR_CFG_SRC_FILE), -1);
    ck_assert_int_eq(gr_config_set(c, "ratio", "-0.1", GR_CFG_SRC_FILE), -1);
    ck_assert_double_eq(gr_config_double(c, "ratio"), 0.0);
    gr_config_free(c);
}
END_TEST

/* ---- .properties syntax ---- */

START_TEST(test_properties_forms)
{
    gr_config *c = new_config();
    const char *text = "# a comment\n"
                       "! another comment\n"
                       "\n"
                       "   \t\n"
                       "k.eq=v1\n"
                       "k.colon: v2\n"
                       "k.space v3\n"
                       "   k.lead   =   v4\n"
                       "k.tabs\t\t:\tv5\n"
                       "k.empty=\n"
                       "k.onlykey\n"
                       "k.eqeq==v6\n"
                       "k.trail = v7  \t \n"
                       "k.hashval = a#b!c\n"
                       "  # indented comment\n"
                       "k.last=no newline at end";
    ck_assert_int_eq(load_text(c, text), 0);
    ck_assert_str_eq(gr_config_original(c, "k.eq"), "v1");
    ck_assert_str_eq(gr_config_original(c, "k.colon"), "v2");
    ck_assert_str_eq(gr_config_original(c, "k.space"), "v3");
    ck_assert_str_eq(gr_config_original(c, "k.lead"), "v4");
    ck_assert_str_eq(gr_config_original(c, "k.tabs"), "v5");
    ck_assert_str_eq(gr_config_original(c, "k.empty"), "");
    ck_assert_str_eq(gr_config_original(c, "k.onlykey"), "");
    ck_assert_str_eq(gr_config_original(c, "k.eqeq"), "=v6");
    ck_assert_str_eq(gr_config_original(c, "k.trail"), "v7");
    ck_assert_str_eq(gr_config_original(c, "k.hashval"), "a#b!c");
    ck_assert_str_eq(gr_config_original(c, "k.last"), "no newline at end");
    ck_assert_ptr_null(gr_config_original(c, "#"));
    ck_assert_ptr_null(gr_config_original(c, "!"));
    ck_assert_ptr_null(gr_config_original(c, "a"));
    gr_config_free(c);
}
END_TEST

START_TEST(test_properties_continuation)
{
    gr_config *c = new_config();
    const char *text = "a = one, \\\n"
                       "      two, \\\n"
                       "\tthree\n"
                       "b = ends with two backslashes \\\\\n"
                       "c = not\\\\\\\n"
                       "  continued\n"
                       "# comment \\\n"
                       "k.after.comment = x\n"
                       "k.crlf = y\\\r\n"
                       "   z\r\n"
                       "k.cr = w\r"
                       "k.empty.next = q\\\n"
                       "\n"
                       "k.eof = tail\\";
    ck_assert_int_eq(load_text(c, text), 0);
    ck_assert_str_eq(gr_config_str(c, "a"), "one, two, three");
    ck_assert_str_eq(gr_config_str(c, "b"), "ends with two backslashes \\");
    ck_assert_str_eq(gr_config_str(c, "c"), "not\\continued");
    /* a comment line never continues */
    ck_assert_str_eq(gr_config_original(c, "k.after.comment"), "x");
    ck_assert_str_eq(gr_config_original(c, "k.crlf"), "yz");
    ck_assert_str_eq(gr_config_original(c, "k.cr"), "w");
    ck_assert_str_eq(gr_config_original(c, "k.empty.next"), "q");
    ck_assert_str_eq(gr_config_original(c, "k.eof"), "tail");
    gr_config_free(c);
}
END_TEST

START_TEST(test_properties_escapes)
{
    gr_config *c = new_config();
    const char *text = "a = tab\\there\\nnl\\\\bs\\=eq\\:co\n"
                       "k\\=ey\\:with\\ space = v\n"
                       "b = \\u00e9\\u20AC\\ud83d\\ude00\\q\n"
                       "c = kept\\ \n"
                       "\\#notcomment = 1\n";
    ck_assert_int_eq(load_text(c, text), 0);
    ck_assert_str_eq(gr_config_str(c, "a"), "tab\there\nnl\\bs=eq:co");
    ck_assert_str_eq(gr_config_original(c, "k=ey:with space"), "v");
    /* U+00E9, U+20AC, U+1F600 (a surrogate pair) as UTF-8; \q is plain q */
    ck_assert_str_eq(gr_config_str(c, "b"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80q");
    ck_assert_str_eq(gr_config_str(c, "c"), "kept ");
    ck_assert_str_eq(gr_config_original(c, "#notcomment"), "1");
    gr_config_free(c);
}
END_TEST

START_TEST(test_properties_errors)
{
    gr_config *c = new_config();
    /* every bad line is reported, with its line number, and good lines still load */
    const char *text = "a = ok\n"
                       "\n"
                       "b = \\u12g4\n"
                       "node.id = abc\n"
                       "c = \\ud800x\n"
                       "num.partitions = 99\n";
    ck_assert_int_eq(load_text(c, text), -1);
    ck_assert_str_eq(gr_config_str(c, "a"), "ok");
    ck_assert(log_line_has("line 3", "\\uXXXX", NULL));
    ck_assert(log_line_has("node.id", "'abc'", "line 4"));
    ck_assert(log_line_has("line 5", "surrogate", NULL));
    ck_assert(log_line_has("num.partitions", "'99'", "line 6"));
    ck_assert_int_eq(gr_config_int(c, "node.id"), -1);

    log_reset();
    ck_assert_int_eq(load_text(c, "a = x\\u0000y\n"), -1);
    ck_assert(log_line_has("line 1", "u0000", NULL));
    ck_assert_int_eq(load_text(c, "a = \\u00e"), -1);

    /* a raw NUL byte cannot be represented in a C string value */
    char path[32];
    strcpy(path, "/tmp/grcfgXXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "a = x\0y\n", 8), 8);
    close(fd);
    ck_assert_int_eq(gr_config_load_file(c, path), -1);
    unlink(path);

    log_reset();
    ck_assert_int_eq(gr_config_load_file(c, "/nonexistent/dir/server.properties"), -1);
    ck_assert(log_line_has("/nonexistent/dir/server.properties", NULL, NULL));
    gr_config_free(c);
}
END_TEST

START_TEST(test_properties_last_wins)
{
    gr_config *c = new_config();
    ck_assert_int_eq(load_text(c, "node.id=1\nnode.id=2\n"), 0);
    ck_assert_int_eq(gr_config_int(c, "node.id"), 2);
    ck_assert_int_eq(load_text(c, ""), 0); /* an empty file is fine */
    ck_assert_int_eq(gr_config_int(c, "node.id"), 2);
    gr_config_free(c);
}
END_TEST

/* ---- load: precedence, environment, arguments ---- */

START_TEST(test_precedence)
{
    gr_config *c = new_config();
    char path[32];
    write_temp(path, "b = file\nc = file\nnum.partitions = 4\n");
    char *envp[] = {"PATH=/usr/bin", "GREGOR_A=env", "GREGOR_B=env", "GREGOR_C=env", "GREGOR_NODE_ID=7",
                    "GREGOR_FOO_BAR_BAZ=underscored", NULL};
    char *argv[] = {"gregor-broker", "--override", "c=override", "--config", path,
                    "--override=num.partitions=6", "--override", "num.partitions=8", NULL};
    ck_assert_int_eq(gr_config_load(c, 8, argv, envp), 0);
    unlink(path);
    ck_assert_str_eq(gr_config_str(c, "a"), "env");
    ck_assert_int_eq(gr_config_get_source(c, "a"), GR_CFG_SRC_ENV);
    ck_assert_str_eq(gr_config_str(c, "b"), "file");
    ck_assert_int_eq(gr_config_get_source(c, "b"), GR_CFG_SRC_FILE);
    ck_assert_str_eq(gr_config_str(c, "c"), "override");
    ck_assert_int_eq(gr_config_get_source(c, "c"), GR_CFG_SRC_OVERRIDE);
    ck_assert_int_eq(gr_config_int(c, "node.id"), 7);
    ck_assert_int_eq(gr_config_int(c, "num.partitions"), 8); /* the last override wins */
    ck_assert_str_eq(gr_config_str(c, "foo_bar.baz"), "underscored");
    ck_assert_int_eq(gr_config_get_source(c, "plain.int"), GR_CFG_SRC_DEFAULT);

    /* precedence does not depend on the order values arrive in */
    ck_assert_int_eq(gr_config_set(c, "c", "from env later", GR_CFG_SRC_ENV), 0);
    ck_assert_str_eq(gr_config_str(c, "c"), "override");
    ck_assert_int_eq(gr_config_set(c, "b", "from env later", GR_CFG_SRC_ENV), 0);
    ck_assert_str_eq(gr_config_str(c, "b"), "file");
    /* ... but a shadowed value is still checked */
    ck_assert_int_eq(gr_config_set(c, "num.partitions", "x", GR_CFG_SRC_ENV), -1);
    gr_config_free(c);
}
END_TEST

START_TEST(test_positional_config_file)
{
    gr_config *c = new_config();
    char path[32];
    write_temp(path, "node.id: 3\n");
    char cfgarg[48];
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", path);
    char *argv1[] = {"gregor-controller", path, NULL};
    ck_assert_int_eq(gr_config_load(c, 2, argv1, NULL), 0);
    ck_assert_int_eq(gr_config_int(c, "node.id"), 3);
    char *argv2[] = {"gregor-controller", cfgarg, "--override", "node.id=4", NULL};
    ck_assert_int_eq(gr_config_load(c, 4, argv2, NULL), 0);
    ck_assert_int_eq(gr_config_int(c, "node.id"), 4);
    char *argv3[] = {"gregor-controller", cfgarg, path, NULL};
    ck_assert_int_eq(gr_config_load(c, 3, argv3, NULL), -1);
    unlink(path);
    gr_config_free(c);
}
END_TEST

START_TEST(test_env_mapping_and_unknown_env)
{
    gr_config *c = new_config();
    char *envp[] = {"GREGOR_LOG_RETENTION_MS=1000", "GREGOR_NO_SUCH_KEY=1", "gregor_node_id=5",
                    "GREGOR_NODE_IDX=6", "NOTGREGOR_A=1", "GREGOR_A", NULL};
    char *argv[] = {"gregor-broker", NULL};
    ck_assert_int_eq(gr_config_load(c, 1, argv, envp), 0);
    ck_assert_int_eq(gr_config_long(c, "log.retention.ms"), 1000);
    ck_assert_int_eq(gr_config_int(c, "node.id"), -1); /* names are upper case only */
    ck_assert_ptr_null(gr_config_str(c, "a"));
    ck_assert(log_line_has("WARN", "GREGOR_NO_SUCH_KEY", NULL));
    ck_assert(log_line_has("WARN", "GREGOR_NODE_IDX", NULL));
    ck_assert(!log_line_has("GREGOR_LOG_RETENTION_MS", "WARN", NULL));
    gr_config_free(c);

    /* an invalid environment value is fatal and named */
    c = new_config();
    char *bad_env[] = {"GREGOR_NUM_PARTITIONS=many", NULL};
    log_reset();
    ck_assert_int_eq(gr_config_load(c, 1, argv, bad_env), -1);
    ck_assert(log_line_has("GREGOR_NUM_PARTITIONS", "'many'", "num.partitions"));
    gr_config_free(c);
}
END_TEST

START_TEST(test_unknown_keys_kept)
{
    gr_config *c = new_config();
    char path[32];
    write_temp(path, "some.future.key = 12\n");
    char *argv[] = {"gregor-broker", "--config", path, "--override", "other.key=v", NULL};
    ck_assert_int_eq(gr_config_load(c, 5, argv, NULL), 0);
    unlink(path);
    ck_assert(log_line_has("WARN", "some.future.key", "line 1"));
    ck_assert(log_line_has("WARN", "other.key", "override"));
    ck_assert_str_eq(gr_config_original(c, "some.future.key"), "12");
    ck_assert_str_eq(gr_config_original(c, "other.key"), "v");
    ck_assert_ptr_null(gr_config_original(c, "never.set"));
    /* precedence holds for unknown keys too */
    ck_assert_int_eq(gr_config_set(c, "other.key", "env", GR_CFG_SRC_ENV), 0);
    ck_assert_str_eq(gr_config_original(c, "other.key"), "v");
    ck_assert_int_eq(gr_config_set(c, "other.key", "w", GR_CFG_SRC_OVERRIDE), 0);
    ck_assert_str_eq(gr_config_original(c, "other.key"), "w");
    gr_config_free(c);
}
END_TEST

START_TEST(test_bad_arguments)
{
    static const struct {
        int argc;
        const char *argv[4];
        const char *expect; /* a fragment the error must contain */
    } cases[] = {
        {2, {"gregor-broker", "--bogus"}, "--bogus"},
        {2, {"gregor-broker", "--help"}, "usage"},
        {2, {"gregor-broker", "--config"}, "--config"},
        {2, {"gregor-broker", "--override"}, "--override"},
        {3, {"gregor-broker", "--override", "novalue"}, "novalue"},
        {3, {"gregor-broker", "--override", "=v"}, "=v"},
        {2, {"gregor-broker", "--config="}, "--config"},
        {2, {"gregor-broker", "-"}, "'-'"},
        {3, {"gregor-broker", "--override", "node.id=x"}, "node.id"},
        {3, {"gregor-broker", "--config", "/nonexistent/x.properties"}, "/nonexistent/x.properties"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gr_config *c = new_config();
        log_reset();
        char *argv[4] = {0};
        for (int a = 0; a < cases[i].argc; a++)
            argv[a] = (char *)cases[i].argv[a];
        ck_assert_msg(gr_config_load(c, cases[i].argc, argv, NULL) == -1, "case %zu accepted", i);
        ck_assert_msg(log_line_has("ERROR", cases[i].expect, NULL), "case %zu: no error naming %s", i,
                      cases[i].expect);
        gr_config_free(c);
    }
}
END_TEST

START_TEST(test_log_dump)
{
    gr_config *c = new_config();
    ck_assert_int_eq(gr_config_set(c, "node.id", "5", GR_CFG_SRC_OVERRIDE), 0);
    ck_assert_int_eq(gr_config_set(c, "sasl.password", "hunter2", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(c, "a", "two\nlines", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(c, "zz.unknown", "u", GR_CFG_SRC_FILE), 0);
    ck_assert_int_eq(gr_config_set(c, "sasl.password", "bad", GR_CFG_SRC_DEFAULT), -1);
    log_reset();
    gr_config_log(c, "broker");
    ck_assert(log_line_has("INFO", "[broker]", "node.id = 5 (override)"));
    ck_assert(log_line_has("num.partitions = 1 (default)", NULL, NULL));
    ck_assert(log_line_has("advertised.listeners = null (default)", NULL, NULL));
    ck_assert(log_line_has("sasl.password = [hidden] (file)", NULL, NULL));
    ck_assert(log_line_has("a = two\\nlines (file)", NULL, NULL));
    ck_assert(log_line_has("zz.unknown = u", "unknown", NULL));
    char *all = logged();
    ck_assert_ptr_null(strstr(all, "hunter2"));
    /* one line per key, in name order */
    int lines = 0;
    for (char *p = all; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, (int)NDEFS + 1);
    ck_assert_ptr_nonnull(strstr(all, "config a = "));
    ck_assert(strstr(all, "config a = ") < strstr(all, "config advertised.listeners"));
    ck_assert(strstr(all, "config sasl.password") < strstr(all, "config zz.unknown"));
    free(all);
    gr_config_free(c);
}
END_TEST

START_TEST(test_password_not_in_errors)
{
    static const gr_config_def pdefs[] = {
        {.name = "ssl.key.password", .type = GR_CFG_PASSWORD, .validate = validate_even, .doc = "x"},
    };
    gr_config *c = gr_config_new(pdefs, 1);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gr_config_set(c, "ssl.key.password", "13", GR_CFG_SRC_FILE), -1);
    ck_assert(log_line_has("ssl.key.password", "[hidden]", NULL));
    gr_config_free(c);
}
END_TEST

/* ---- programming errors abort ---- */

START_TEST(test_undefined_key_aborts)
{
    gr_config *c = new_config();
    (void)gr_config_int(c, "no.such.key");
}
END_TEST

START_TEST(test_wrong_type_aborts)
{
    gr_config *c = new_config();
    (void)gr_config_bool(c, "node.id");
}
END_TEST

START_TEST(test_unset_without_default_aborts)
{
    gr_config *c = new_config();
    (void)gr_config_int(c, "required.int");
}
END_TEST

START_TEST(test_bad_default_aborts)
{
    static const gr_config_def bad[] = {{.name = "x", .type = GR_CFG_INT, .dflt = "ten"}};
    (void)gr_config_new(bad, 1);
}
END_TEST

START_TEST(test_env_name_clash_aborts)
{
    static const gr_config_def bad[] = {{.name = "x.y", .type = GR_CFG_INT}, {.name = "x_y", .type = GR_CFG_INT}};
    (void)gr_config_new(bad, 2);
}
END_TEST

/* ---- listeners and voters ---- */

START_TEST(test_listeners_ok)
{
    gr_listener l[8];
    char err[256] = "";
    int n = gr_listeners_parse("PLAINTEXT://:9092, CONTROLLER://127.0.0.1:9093 ,"
                               "EXTERNAL_2://[::1]:9094,internal://broker-1.example.com:0",
                               l, 8, err, sizeof err);
    ck_assert_msg(n == 4, "n=%d err=%s", n, err);
    ck_assert_str_eq(l[0].name, "PLAINTEXT");
    ck_assert_str_eq(l[0].host, "");
    ck_assert_int_eq(l[0].port, 9092);
    ck_assert_str_eq(l[1].name, "CONTROLLER");
    ck_assert_str_eq(l[1].host, "127.0.0.1");
    ck_assert_int_eq(l[1].port, 9093);
    ck_assert_str_eq(l[2].name, "EXTERNAL_2");
    ck_assert_str_eq(l[2].host, "::1");
    ck_assert_int_eq(l[2].port, 9094);
    ck_assert_str_eq(l[3].name, "INTERNAL"); /* normalised to upper case, as Kafka does */
    ck_assert_str_eq(l[3].host, "broker-1.example.com");
    ck_assert_int_eq(l[3].port, 0);

    ck_assert_int_eq(gr_listeners_parse("", l, 8, err, sizeof err), 0);
    ck_assert_int_eq(gr_listeners_parse("  ", l, 8, err, sizeof err), 0);
    ck_assert_int_eq(gr_listeners_parse("A://[fe80::1%eth0]:65535", l, 8, err, sizeof err), 1);
    ck_assert_str_eq(l[0].host, "fe80::1%eth0");
    ck_assert_int_eq(l[0].port, 65535);
    /* two ephemeral ports do not clash */
    ck_assert_int_eq(gr_listeners_parse("A://:0,B://:0", l, 8, err, sizeof err), 2);
}
END_TEST

START_TEST(test_listeners_errors)
{
    static const struct {
        const char *value, *expect;
    } cases[] = {
        {"PLAINTEXT:9092", "NAME://"},
        {"PLAINTEXT//:9092", "NAME://"},
        {"://:9092", "name"},
        {"PLAIN-TEXT://:9092", "name"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456://:1", "name"},
        {"A://host", "port"},
        {"A://host:", "port"},
        {"A://host:65536", "port"},
        {"A://host:-1", "port"},
        {"A://host:90x", "port"},
        {"A://host:99999999999999999999", "port"},
        {"A://::1:9092", "brackets"},
        {"A://[::1:9092", "]"},
        {"A://[::1]9092", "port"},
        {"A://[127.0.0.1]:9092", "IPv6"},
        {"A://ho st:1", "host"},
        {"A://:9092,A://:9093", "A"},
        {"A://:9092,a://:9093", "A"},
        {"A://:9092,B://h:9092", "9092"},
        {"A://:1,,B://:2", "empty"},
        {"A://:1,", "empty"},
        {"A://:1,B://:2,C://:3", "more than 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gr_listener l[2];
        char err[256] = "";
        int n = gr_listeners_parse(cases[i].value, l, 2, err, sizeof err);
        ck_assert_msg(n == -1, "'%s' accepted (%d)", cases[i].value, n);
        ck_assert_msg(strstr(err, cases[i].expect) != NULL, "'%s': error '%s' lacks '%s'", cases[i].value, err,
                      cases[i].expect);
    }
    char longhost[300] = "A://";
    memset(longhost + 4, 'h', 260);
    strcpy(longhost + 264, ":1");
    gr_listener l[1];
    char err[256];
    ck_assert_int_eq(gr_listeners_parse(longhost, l, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

START_TEST(test_voters)
{
    gr_voter v[4];
    char err[256] = "";
    int n = gr_voters_parse("1@localhost:9093, 2@[::1]:9094,0@10.0.0.3:9095", v, 4, err, sizeof err);
    ck_assert_msg(n == 3, "n=%d err=%s", n, err);
    ck_assert_int_eq(v[0].id, 1);
    ck_assert_str_eq(v[0].host, "localhost");
    ck_assert_int_eq(v[0].port, 9093);
    ck_assert_int_eq(v[1].id, 2);
    ck_assert_str_eq(v[1].host, "::1");
    ck_assert_int_eq(v[1].port, 9094);
    ck_assert_int_eq(v[2].id, 0);
    ck_assert_str_eq(v[2].host, "10.0.0.3");
    ck_assert_int_eq(gr_voters_parse("2147483647@h:1", v, 4, err, sizeof err), 1);
    ck_assert_int_eq(v[0].id, INT32_MAX);
    ck_assert_int_eq(gr_voters_parse("", v, 4, err, sizeof err), 0);

    static const struct {
        const char *value, *expect;
    } bad[] = {
        {"1@h:1,1@g:2", "twice"},
        {"-1@h:1", "id"},
        {"x@h:1", "id"},
        {"@h:1", "id"},
        {"2147483648@h:1", "id"},
        {"1@:9093", "host"},
        {"1h:9093", "id@host:port"},
        {"1@h", "port"},
        {"1@h:0", "port"},
        {"1@h:70000", "port"},
        {"1@::1:9093", "brackets"},
        {"1@h:1,,2@h:2", "empty"},
        {"1@a:1,2@b:2,3@c:3,4@d:4,5@e:5", "more than 4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        n = gr_voters_parse(bad[i].value, v, 4, err, sizeof err);
        ck_assert_msg(n == -1, "'%s' accepted (%d)", bad[i].value, n);
        ck_assert_msg(strstr(err, bad[i].expect) != NULL, "'%s': error '%s' lacks '%s'", bad[i].value, err,
                      bad[i].expect);
    }
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *t = tcase_create("values");
    tcase_add_checked_fixture(t, capture_setup, capture_teardown);
    tcase_add_test(t, test_defaults);
    tcase_add_test(t, test_set_and_is_set);
    tcase_add_test(t, test_int_parsing);
    tcase_add_test(t, test_bool_and_double_parsing);
    tcase_add_test(t, test_log_dump);
    tcase_add_test(t, test_password_not_in_errors);
    tcase_add_test_raise_signal(t, test_undefined_key_aborts, SIGABRT);
    tcase_add_test_raise_signal(t, test_wrong_type_aborts, SIGABRT);
    tcase_add_test_raise_signal(t, test_unset_without_default_aborts, SIGABRT);
    tcase_add_test_raise_signal(t, test_bad_default_aborts, SIGABRT);
    tcase_add_test_raise_signal(t, test_env_name_clash_aborts, SIGABRT);
    suite_add_tcase(s, t);

    t = tcase_create("properties");
    tcase_add_checked_fixture(t, capture_setup, capture_teardown);
    tcase_add_test(t, test_properties_forms);
    tcase_add_test(t, test_properties_continuation);
    tcase_add_test(t, test_properties_escapes);
    tcase_add_test(t, test_properties_errors);
    tcase_add_test(t, test_properties_last_wins);
    suite_add_tcase(s, t);

    t = tcase_create("load");
    tcase_add_checked_fixture(t, capture_setup, capture_teardown);
    tcase_add_test(t, test_precedence);
    tcase_add_test(t, test_positional_config_file);
    tcase_add_test(t, test_env_mapping_and_unknown_env);
    tcase_add_test(t, test_unknown_keys_kept);
    tcase_add_test(t, test_bad_arguments);
    suite_add_tcase(s, t);

    t = tcase_create("listeners");
    tcase_add_test(t, test_listeners_ok);
    tcase_add_test(t, test_listeners_errors);
    tcase_add_test(t, test_voters);
    suite_add_tcase(s, t);
    return s;
}
