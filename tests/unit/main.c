/*
 * main.c - runs every unit suite. With arguments, runs only the suites named
 * (e.g. `build/unit-tests proto config`); CK_RUN_CASE selects one test case.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/suites.h"

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
    {"buf", buf_suite},
    {"proto", proto_suite},
    {"proto_all", proto_all_suite},
    {"config", config_suite},
    {"netserver", netserver_suite},
    {"zerocopy", zerocopy_suite},
    {"kclient", kclient_suite},
    {"crc32c", crc32c_suite},
    {"compress", compress_suite},
    {"batch", batch_suite},
    {"index", index_suite},
    {"checkpoint", checkpoint_suite},
    {"log", log_suite},
    {"cleaner", cleaner_suite},
    {"logtask", logtask_suite},
    {"purgatory", purgatory_suite},
    {"metadata", metadata_suite},
    {"raft", raft_suite},
    {"topic_config", topic_config_suite},
    {"control", control_suite},
    {"offsets_topic", offsets_topic_suite},
    {"group", group_suite},
    {"offsets_log", offsets_log_suite},
    {"offset_reset", offset_reset_suite},
    {"fetch_session", fetch_session_suite},
    {"log_apis", log_apis_suite},
    {"topic_settings", topic_settings_suite},
};

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], suites[i].name) == 0;
        if (!wanted)
            continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr)
        return EXIT_FAILURE;
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
