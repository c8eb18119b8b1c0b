/*
 * gregorctl.c - the admin command-line tool.
 *
 * Topic, config, cluster and group commands arrive with the issues that add
 * the APIs behind them; for now it answers --version and --help.
 */
#include <stdio.h>
#include <string.h>

#include "common/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gregorctl -b HOST:PORT COMMAND ...\n"
               "\n"
               "Administers a Gregor cluster (no commands are available yet in this release).\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("gregorctl %s\n", GR_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
