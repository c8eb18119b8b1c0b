/*
 * cluster.h - the broker's membership of a cluster (controller.quorum.voters
 * set): it follows the metadata log, registers with the active controller
 * and heartbeats, and forwards admin requests to it.
 *
 * Threads. All of this runs on the broker's main event loop: the quorum
 * observer (common/quorum) that keeps the metadata image, the lifecycle
 * (registration, heartbeats, controlled shutdown) and the client connection
 * to the active controller. Network threads read the image under a read
 * lock (gr_cluster_read_lock) and hand requests to forward to the main loop;
 * the controller's answer goes back to the request's own thread.
 *
 * Lifecycle, as Kafka's brokers: register (a fresh incarnation id per
 * process), then heartbeat every broker.heartbeat.interval.ms; the
 * controller unfences the broker once it has caught up with the metadata
 * log. On SIGTERM the broker asks for a controlled shutdown in its
 * heartbeats and exits when the controller says its leaderships have moved
 * (or after a bounded wait).
 */
#ifndef GR_BROKER_CLUSTER_H
#define GR_BROKER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/metadata.h"
#include "common/netserver.h"

struct event_base;
struct gr_broker;
typedef struct gr_cluster gr_cluster;

/* Starts following the cluster on base (the main loop). NULL (logged) on failure. */
gr_cluster *gr_cluster_start(struct gr_broker *b, struct event_base *base);

/* Controlled shutdown: calls done(arg) on the main loop once the controller
 * has moved this broker's leaderships away, or the wait has run out. */
void gr_cluster_shutdown(gr_cluster *c, void (*done)(void *arg), void *arg);
void gr_cluster_free(gr_cluster *c);

/* The committed metadata image, for reading under the read lock. */
const gr_metadata_image *gr_cluster_read_lock(gr_cluster *c);
void gr_cluster_read_unlock(gr_cluster *c);

/* The node id of the active controller, as far as this broker knows (-1). */
int32_t gr_cluster_controller(const gr_cluster *c);

/* Sends msg (the decoded request of req, living in req's arena) to the
 * active controller and answers req with the controller's response body
 * when it comes. Call from req's network thread; returns GR_PENDING, or
 * GR_CLOSE if it cannot be forwarded. */
int gr_cluster_forward(gr_cluster *c, gr_request *req, const void *msg);

/* Asks the active controller to create `name` with the defaults, without
 * waiting (Metadata's auto.create.topics.enable). Any thread. */
void gr_cluster_create_topic(gr_cluster *c, gr_str name);

#endif
