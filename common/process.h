/*
 * process.h - the start every Gregor binary shares: SIGPIPE ignored (a peer
 * closing its socket is an error on the write, not the death of the
 * process), --help and --version answered, and the configuration loaded
 * from GREGOR_* environment variables, the --config file and --override
 * flags (config.h).
 */
#ifndef GR_PROCESS_H
#define GR_PROCESS_H

#include <stddef.h>
#include <stdio.h>

#include "common/config.h"

/* gr_process_begin's answer when the process should go on. */
#define GR_PROCESS_RUN (-1)

/* GR_PROCESS_RUN with *config loaded (the caller frees it), or the exit
 * status to return from main: 0 after --help or --version, 1 on an error
 * (already reported). usage(f) prints the binary's usage. */
int gr_process_begin(int argc, char **argv, const char *name, void (*usage)(FILE *f),
                     const gr_config_def *defs, size_t ndefs, gr_config **config);

#endif
