/* process.c - see process.h. */
#include "common/process.h"

#include <signal.h>
#include <string.h>

#include "common/version.h"

extern char **environ;

int gr_process_begin(int argc, char **argv, const char *name, void (*usage)(FILE *f),
                     const gr_config_def *defs, size_t ndefs, gr_config **config)
{
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", name, GR_VERSION);
            return 0;
        }
    }
    *config = gr_config_new(defs, ndefs);
    if (!*config)
        return 1;
    if (gr_config_load(*config, argc, argv, environ) != 0) {
        usage(stderr);
        gr_config_free(*config);
        *config = NULL;
        return 1;
    }
    return GR_PROCESS_RUN;
}
