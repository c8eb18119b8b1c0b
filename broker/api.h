/*
 * api.h - the APIs the broker serves: the table dispatch and ApiVersions
 * use (broker/api.c), and one handler per API (broker/api_*.c).
 *
 * Handlers receive the gr_broker as req->ctx.
 */
#ifndef GR_BROKER_API_H
#define GR_BROKER_API_H

#include "broker/broker.h"
#include "common/netserver.h"

extern const gr_api_table gr_broker_apis;

int gr_handle_metadata(gr_request *req, gr_writer *out);

#endif
