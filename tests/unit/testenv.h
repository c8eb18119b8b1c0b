/*
 * testenv.h - scaffolding the file-backed unit suites share: a scratch
 * directory per test, and stderr captured into an unlinked scratch file so
 * that log lines stay out of the test output and tests can ask what was
 * logged.
 */
#ifndef GR_TEST_TESTENV_H
#define GR_TEST_TESTENV_H

#include <stddef.h>

/* Makes a fresh directory /tmp/gr<tag>XXXXXX into buf (fails the test if it
 * cannot). */
void gr_test_mkdtemp(char *buf, size_t len, const char *tag);

/* Removes dir and everything under it (no error if it is gone). */
void gr_test_rmtree(const char *dir);

/* Sends stderr to a scratch file until gr_test_release_stderr. */
void gr_test_capture_stderr(void);
void gr_test_release_stderr(void);

/* How many times s occurs in what was written to stderr since the capture. */
int gr_test_logged(const char *s);

#endif
