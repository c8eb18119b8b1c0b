/*
 * testnet.h - a real gr_netserver on 127.0.0.1 for unit tests, run on its
 * own thread, and the raw-socket client side of such tests.
 */
#ifndef GR_TESTNET_H
#define GR_TESTNET_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/netserver.h"

typedef struct {
    struct event_base *base;
    gr_netserver *srv;
    pthread_t thread;
    int port;
    gr_listener listener;
    gr_netserver_config cfg;
} gr_test_server;

/* Serves apis on 127.0.0.1:<ephemeral> with `threads` network threads (0:
 * on the server's own loop thread); ctx becomes every request's req->ctx.
 * Requests are limited to 1024 bytes. Fails the test on any error. */
void gr_test_server_start(gr_test_server *s, const gr_api_table *apis, int threads, void *ctx);
/* Stops the server from its own loop thread and joins it. */
void gr_test_server_stop(gr_test_server *s);

/* A connected socket to 127.0.0.1:port with a receive timeout; rcvbuf > 0
 * sets a small receive buffer (to make the server's sends partial). */
int gr_test_dial(int port, int timeout_s, int rcvbuf);
/* Reads exactly n bytes; -1 on EOF, error or timeout. */
int gr_test_recv_all(int fd, uint8_t *p, size_t n);

#endif
