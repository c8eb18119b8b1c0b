/*
 * main.c - gregor-controller: a member of the Raft metadata quorum.
 *
 * The quorum itself arrives with the controller issue; for now the binary
 * answers --version and --help so that packaging and scripts can rely on it.
 */
#include <stdio.h>
#include <string.h>

#include "common/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gregor-controller [--config FILE] [--override key=value ...]\n"
               "\n"
               "A member of the metadata quorum (not implemented yet in this release).\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("gregor-controller %s\n", GR_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    fprintf(stderr, "gregor-controller: the controller quorum is not available in this release\n");
    return 2;
}
