/*
 * kclient.h - the Kafka protocol client: one connection to one endpoint.
 *
 * Used wherever Gregor speaks Kafka's protocol as a client: brokers calling
 * the active controller (BrokerRegistration, BrokerHeartbeat, metadata
 * Fetch, forwarded admin requests), controllers calling each other (Vote,
 * BeginQuorumEpoch, Fetch, ...) and the gregorctl admin tool.
 *
 * Model
 * -----
 * A gr_kclient is asynchronous and runs on a libevent event_base that the
 * caller owns; it belongs to the thread running that base (no locks). It
 * connects lazily on the first send, exchanges ApiVersions right after
 * connecting (before any queued request is written), and then writes
 * requests as they come: requests are pipelined and responses are matched
 * to requests by correlation id. Kafka answers a connection's requests in
 * order, so a response whose correlation id is not the oldest in-flight
 * request's is a protocol error that closes the connection.
 *
 * Failures: a response frame larger than GR_KCLIENT_MAX_RESPONSE (checked
 * before anything is buffered for it), a malformed response header, or a
 * correlation id mismatch closes the connection with a log line naming the
 * endpoint. Whenever the connection closes (error, peer going away, a
 * request timing out while in flight, connection setup failing), every
 * request on it, written or still queued, completes with an error. The next
 * send reconnects, no earlier than the reconnect backoff allows (50 ms after
 * a failure, doubling up to 1000 ms, reset by a successful ApiVersions
 * exchange); requests wait for that within their own timeout.
 *
 * A request's timeout bounds the whole call: waiting for backoff, connecting,
 * negotiating and the response. A request that times out while written and
 * unanswered closes the connection (as Kafka's clients do), since its
 * response slot cannot be skipped.
 *
 * Callbacks are never called from inside gr_kclient_send: always from the
 * event loop (or from gr_kclient_free). A callback may call gr_kclient_send
 * and gr_kclient_free on its own client.
 *
 * Host names are resolved with getaddrinfo(), which blocks the event loop
 * while it runs; every address returned is tried in turn.
 *
 * Writing to a connection the peer has closed raises SIGPIPE: a process
 * using this module must ignore SIGPIPE.
 */
#ifndef GR_KCLIENT_H
#define GR_KCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

struct event_base;

/* Errors, besides the GR_ERR_* of buf.h that encoding may return. */
enum {
    GR_KCLIENT_ERR_CONNECT = -20,     /* could not resolve, connect or negotiate */
    GR_KCLIENT_ERR_DISCONNECTED = -21, /* the connection closed before the response */
    GR_KCLIENT_ERR_TIMEOUT = -22,     /* timeout_ms passed */
    GR_KCLIENT_ERR_PROTOCOL = -23,    /* malformed or unexpected response */
    GR_KCLIENT_ERR_CLOSED = -24,      /* the client was freed */
    GR_KCLIENT_ERR_UNSUPPORTED = -25, /* the peer does not support this api key/version */
};

/* The largest response frame accepted (bytes after the size prefix). */
#define GR_KCLIENT_MAX_RESPONSE (100 * 1024 * 1024)
/* Connecting plus the ApiVersions exchange must finish within this. */
#define GR_KCLIENT_SETUP_TIMEOUT_MS 10000
#define GR_KCLIENT_BACKOFF_MS 50
#define GR_KCLIENT_BACKOFF_MAX_MS 1000

typedef struct gr_kclient gr_kclient;

/* A name for any error this module returns (kclient or GR_ERR_*). */
const char *gr_kclient_strerror(int err);

/*
 * A client for host:port on base; nothing happens until the first send.
 * client_id goes into every request header (NULL: a null client id).
 * NULL on allocation failure.
 */
gr_kclient *gr_kclient_new(struct event_base *base, const char *host, int port,
                           const char *client_id);

/*
 * Closes the connection and frees c. Every request not yet completed gets
 * its callback with GR_KCLIENT_ERR_CLOSED before this returns. May be called
 * from a callback of c (c is then freed when that callback returns).
 */
void gr_kclient_free(gr_kclient *c);

/*
 * Completion of a request: err 0 and body, a reader over the response body
 * (after the response header), valid only during the callback; or a negative
 * error and body NULL.
 */
typedef void (*gr_kclient_cb)(void *arg, int err, gr_reader *body);

/*
 * Encodes msg (the generated request struct of api_key, e.g. a
 * gr_metadata_request for GR_API_METADATA) at version, behind a request
 * header with a correlation id chosen here, and queues it; msg is not used
 * after this returns. Connects if needed. timeout_ms <= 0 means no timeout.
 * After negotiation, a request at a version the peer does not support
 * completes with GR_KCLIENT_ERR_UNSUPPORTED without being written.
 * cb is required. Returns 0 (cb will be called exactly once) or a negative
 * error (cb will not be called): GR_ERR_VERSION for an api key or version
 * our codec does not know (or a NULL cb), GR_ERR_MALFORMED if msg cannot be encoded, GR_ERR_NOMEM, or
 * GR_KCLIENT_ERR_CLOSED while c is being freed.
 */
int gr_kclient_send(gr_kclient *c, int16_t api_key, int16_t version, const void *msg,
                    int timeout_ms, gr_kclient_cb cb, void *arg);

/*
 * Connects and negotiates if not done yet; cb gets err 0 (body NULL) once
 * the ApiVersions exchange has succeeded, so that gr_kclient_version()
 * answers. Returns as gr_kclient_send.
 */
int gr_kclient_connect(gr_kclient *c, int timeout_ms, gr_kclient_cb cb, void *arg);

/*
 * After the ApiVersions exchange of the current connection: the highest
 * version of api_key that both we and the peer support, capped by
 * max_wanted; -1 if there is none or the connection is not negotiated.
 */
int16_t gr_kclient_version(gr_kclient *c, int16_t api_key, int16_t max_wanted);

/*
 * The frame of one request (int32 size, request header, msg encoded at
 * version), as gr_kclient_send writes it, for a caller that writes requests
 * on a connection of its own: a Produce with acks=0 gets no response, which
 * a gr_kclient, matching every request to one, cannot send. *frame is
 * malloc'ed (the caller frees it). client_id may be NULL. Returns 0 or a
 * GR_ERR_* (GR_ERR_MALFORMED if msg cannot be encoded, GR_ERR_NOMEM).
 */
int gr_kclient_encode_frame(int16_t key, int16_t version, int32_t corr, const char *client_id,
                            const void *msg, uint8_t **frame, size_t *len);

/* Connected and negotiated. */
bool gr_kclient_connected(const gr_kclient *c);

/* "host:port", for log lines. */
const char *gr_kclient_endpoint(const gr_kclient *c);

/*
 * Blocking, for tools: connects to host:port on a private event_base,
 * negotiates, sends one request and waits for its response, which it
 * decodes into *out (the generated response struct of api_key, allocated in
 * arena, strings pointing into a copy of the response also in arena).
 * version -1 asks for the highest version both sides support. On success
 * *used_version (if not NULL) is the version used. timeout_ms bounds the
 * whole call. Returns 0 or a negative error. Do not call it from a thread
 * running another event loop's callbacks if that loop must stay responsive.
 */
int gr_kclient_call(const char *host, int port, int16_t api_key, int16_t version,
                    const void *msg, int timeout_ms, gr_arena *arena, void **out,
                    int16_t *used_version);

#endif
