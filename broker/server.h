/*
 * server.h - the broker's network layer: listeners, network threads, Kafka
 * framing and in-order request dispatch.
 *
 * Threading model
 * ---------------
 * The main thread runs an acceptor event loop that owns every listening
 * socket and the signal handlers. Each accepted connection is handed, round
 * robin, to one of num.network.threads worker threads, each running its own
 * libevent loop. A connection lives on its worker for its whole life: its
 * bytes are read, framed, decoded, handled and answered on that thread, so a
 * connection's state needs no locks. More cores are used by raising
 * num.network.threads (Kafka's key and default, 3).
 *
 * Framing and order
 * -----------------
 * A request is an int32 big-endian size followed by that many bytes. The
 * size is checked against socket.request.max.bytes before any byte of the
 * body is buffered for it; a negative or oversized size, a header too short
 * to hold the api key, version and correlation id, an unknown API, or a body
 * that does not decode closes that connection (with a log line saying why)
 * and nothing else. Requests on one connection are answered in the order
 * they arrived, as clients require: a connection handles one request at a
 * time and reads the next only after the previous response is queued.
 */
#ifndef GR_SERVER_H
#define GR_SERVER_H

#include "broker/broker.h"

typedef struct gr_server gr_server;

/* Binds every listener; returns NULL after logging if one cannot be bound. */
gr_server *gr_server_new(gr_broker *broker);

/* Runs until SIGINT or SIGTERM, then closes listeners and connections. */
int gr_server_run(gr_server *s);

void gr_server_free(gr_server *s);

#endif
