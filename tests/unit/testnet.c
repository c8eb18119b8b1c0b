/* testnet.c - see testnet.h. */
#include "tests/unit/testnet.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *run_base(void *arg)
{
    gr_test_server *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

void gr_test_server_start(gr_test_server *s, const gr_api_table *apis, int threads, void *ctx)
{
    memset(s, 0, sizeof *s);
    strcpy(s->listener.name, "PLAINTEXT");
    strcpy(s->listener.host, "127.0.0.1");
    s->cfg = (gr_netserver_config){.listeners = &s->listener, .nlisteners = 1,
                                   .max_request_bytes = 1024, .num_threads = threads,
                                   .apis = apis, .ctx = ctx, .subsystem = "test"};
    /* The test thread stops the loop from outside: the base needs locks. */
    ck_assert_int_eq(evthread_use_pthreads(), 0);
    s->base = event_base_new();
    ck_assert_ptr_nonnull(s->base);
    s->srv = gr_netserver_new(s->base, &s->cfg);
    ck_assert_ptr_nonnull(s->srv);
    ck_assert_int_eq(gr_netserver_start(s->srv), 0);
    s->port = gr_netserver_port(s->srv, 0);
    ck_assert_int_gt(s->port, 0);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, run_base, s), 0);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gr_test_server *s = arg;
    gr_netserver_free(s->srv);
    event_base_loopbreak(s->base);
}

void gr_test_server_stop(gr_test_server *s)
{
    event_base_once(s->base, -1, EV_TIMEOUT, stop_cb, s, &(struct timeval){0, 0});
    pthread_join(s->thread, NULL);
    event_base_free(s->base);
}

int gr_test_dial(int port, int timeout_s, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

int gr_test_recv_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}
