/*
 * netserver.h - the Kafka-protocol server both binaries use: listeners,
 * network threads, framing, in-order dispatch and asynchronous completion.
 *
 * Threading model
 * ---------------
 * The caller's event base (the main thread's) owns the listening sockets.
 * With num_threads > 0, each accepted connection is handed round robin to
 * one of that many network threads, each running its own libevent loop; a
 * connection lives on its thread for its whole life, so its state needs no
 * locks. The broker uses num.network.threads of them to spread clients over
 * cores. With num_threads == 0, connections are served on the caller's base
 * itself: the controller does this so that its Raft core, its state machine
 * and its network all run on one thread.
 *
 * Framing and order
 * -----------------
 * A request is an int32 big-endian size followed by that many bytes. The
 * size is checked against max_request_bytes before any byte of the body is
 * buffered; a negative or oversized size, a header too short to hold the
 * api key, version and correlation id, an unknown API or version, or a
 * header that does not decode closes that connection (with a log line
 * saying why) and nothing else. ApiVersions of a version we do not know is
 * answered as Kafka does instead (see api_versions.h).
 *
 * A connection handles one request at a time: it reads the next frame only
 * after the previous response is queued, so responses leave in request
 * order, as Kafka clients require. A handler either answers at once or
 * returns GR_PENDING and completes later with gr_request_complete() on the
 * connection's thread (long polls, produce waiting for replication). If a
 * client stops reading its responses, the server stops reading its requests
 * until they drain.
 */
#ifndef GR_NETSERVER_H
#define GR_NETSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "proto/codec.h"
#include "proto/messages.h"

struct event_base;
typedef struct gr_netserver gr_netserver;
typedef struct gr_request gr_request;

/* Handler results. */
enum {
    GR_HANDLED = 0, /* req->out holds the response body */
    GR_NO_RESPONSE, /* nothing to send (acks=0 produce) */
    GR_CLOSE,       /* malformed request: log line written, close the connection */
    GR_PENDING,     /* the handler will call gr_request_complete() later */
};

typedef int (*gr_handler_fn)(gr_request *req, gr_writer *out);

typedef struct {
    int16_t key;
    int16_t min_version, max_version;
    gr_handler_fn handle;
} gr_api_handler;

/* The APIs a server serves. Dispatch looks handlers up here and ApiVersions
 * advertises exactly this, so nothing unserved is ever advertised. */
typedef struct {
    const gr_api_handler *handlers;
    size_t count;
} gr_api_table;

const gr_api_handler *gr_api_table_lookup(const gr_api_table *t, int16_t key);

struct gr_request {
    void *ctx; /* the server's context: the gr_broker, the controller */
    const gr_api_table *apis;
    gr_request_header header;
    int16_t api_key, api_version;
    gr_reader body; /* the bytes after the header (valid until completion) */
    gr_arena arena; /* freed when the request completes */
    int listener;   /* index into the configured listeners */
    const char *peer; /* "host:port" of the client, for log lines */
    gr_writer out;  /* the response frame being built; handlers append the body */
    struct gr_conn *conn; /* private: NULL once the connection has gone */
    bool in_handler;      /* private: the handler is still on the stack */
    int early_rc;         /* private: completed before the handler returned (-1: not) */
    gr_splices files;     /* private: file ranges of the response (gr_request_file_records) */
    void (*gone)(gr_request *req, void *arg); /* private: see gr_request_on_gone */
    void *gone_arg;
};

/*
 * Zero-copy response data. Makes *records a file-backed value for len bytes
 * of fd at offset, to be put in a bytes or records field (Fetch's Records)
 * of the response encoded into req->out. When the response is queued, the
 * bytes of out before, between and after such values are sent from memory
 * and the ranges straight from the file: with sendfile(2) on plaintext
 * connections (libevent reads them into memory on others). The frame size
 * counts the file bytes.
 *
 * release(arg) runs exactly once, on the connection's thread or the one that
 * frees the request, after the bytes have been handed to the socket, or
 * when the connection closes first, or when the request ends without
 * sending them (GR_NO_RESPONSE, GR_CLOSE, an encoder error, the client gone
 * while pending, or the value simply never encoded). fd must stay open and
 * the range unchanged until then; the descriptor is never closed here.
 *
 * Returns GR_OK, or an error (too long a range, out of memory) after which
 * release has already run and *records is an empty value: answer that
 * partition with an error instead. len 0 gives an empty value and releases
 * at once.
 *
 * Encode the response into req->out only (another writer refuses the value
 * with GR_ERR_MALFORMED) and only once; after an encoder fails, answer
 * GR_CLOSE rather than writing a different body into the same writer.
 * Call on the request's connection thread, like gr_request_complete.
 */
int gr_request_file_records(gr_request *req, int fd, int64_t offset, size_t len,
                            void (*release)(void *arg), void *arg, gr_bytes *records);

/* Completes a request a handler left GR_PENDING: rc is GR_HANDLED (req->out
 * holds the body), GR_NO_RESPONSE or GR_CLOSE. Must run on the thread of
 * the connection; it may even run before the handler has returned
 * GR_PENDING (a state machine that answers at once). If the client has gone
 * meanwhile the request is just freed. req is freed in every case. */
void gr_request_complete(gr_request *req, int rc);

/* For a handler about to return GR_PENDING: gone(req, arg) runs once, on
 * the connection's thread, if the client goes away (or the server stops)
 * while the request is still pending; req is already detached then
 * (gr_request_base is NULL). The handler should complete the request there
 * (gr_request_complete just frees it) rather than hold it until its own
 * deadline. Not called once the request completed. */
void gr_request_on_gone(gr_request *req, void (*gone)(gr_request *req, void *arg), void *arg);

/* The event base of the request's connection thread: where a pending
 * handler arms its timers and from which it must complete. NULL once the
 * client has gone. */
struct event_base *gr_request_base(const gr_request *req);

typedef struct {
    const gr_listener *listeners;
    int nlisteners;
    int32_t max_request_bytes; /* socket.request.max.bytes */
    int64_t idle_ms;           /* connections.max.idle.ms; <= 0: never */
    int num_threads;           /* 0: serve on the caller's event base */
    const gr_api_table *apis;
    void *ctx;                 /* handed to every request as req->ctx */
    const char *subsystem;     /* for log lines: "broker", "controller" */
} gr_netserver_config;

/* Binds every listener on base. cfg and what it points to must outlive the
 * server. NULL (logged) if a listener cannot be bound. */
gr_netserver *gr_netserver_new(struct event_base *base, const gr_netserver_config *cfg);

/* Starts the network threads. 0 or -1. */
int gr_netserver_start(gr_netserver *s);

/* The port a listener is bound to (useful with port 0). */
int gr_netserver_port(const gr_netserver *s, int listener);

/* Stops accepting, stops the network threads and closes every connection.
 * Call from the thread running base, after its loop has stopped or from a
 * callback on it. */
void gr_netserver_free(gr_netserver *s);

#endif
