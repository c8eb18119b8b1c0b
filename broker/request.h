/*
 * request.h - one decoded request on its way through a handler.
 *
 * The network layer frames a request, decodes its header and looks up the
 * API; the handler decodes the body with the generated decoder for that API,
 * does its work and encodes the response body into `out`. Everything a
 * handler allocates for one request comes from req->arena, which is freed
 * when the response has been queued, so handlers never free anything.
 */
#ifndef GR_REQUEST_H
#define GR_REQUEST_H

#include "broker/broker.h"
#include "common/buf.h"
#include "proto/messages.h"

typedef struct gr_request {
    gr_broker *broker;
    gr_request_header header;
    int16_t api_key, api_version;
    gr_reader body;      /* the bytes after the header */
    gr_arena arena;      /* lives until the response is queued */
    int listener;        /* index into broker->listeners it arrived on */
    const char *peer;    /* "host:port" of the client, for log lines */
} gr_request;

/* Handler results. */
enum {
    GR_HANDLED = 0,  /* `out` holds the response body */
    GR_NO_RESPONSE,  /* nothing to send (acks=0 produce) */
    GR_CLOSE,        /* malformed request: log line written, close the connection */
};

typedef int (*gr_handler_fn)(gr_request *req, gr_writer *out);

typedef struct {
    int16_t key;
    int16_t min_version, max_version;
    gr_handler_fn handle;
} gr_api_handler;

/* The APIs this broker serves; ApiVersions advertises exactly this table. */
const gr_api_handler *gr_api_handler_lookup(int16_t key);
extern const gr_api_handler gr_api_handlers[];
extern const size_t gr_api_handlers_count;

/* Encodes the ApiVersions UNSUPPORTED_VERSION answer (a v0 body) into out. */
int gr_api_versions_unsupported(gr_writer *out);

/* Handlers, one per API (broker/api_*.c). */
int gr_handle_api_versions(gr_request *req, gr_writer *out);
int gr_handle_metadata(gr_request *req, gr_writer *out);

#endif
