/*
 * api_versions.h - the ApiVersions API, answered the same way by every
 * Gregor server from the table of APIs it serves (netserver.h).
 */
#ifndef GR_API_VERSIONS_H
#define GR_API_VERSIONS_H

#include "common/netserver.h"

/* The ApiVersions handler: every entry of req->apis. */
int gr_handle_api_versions(gr_request *req, gr_writer *out);

/* The answer to an ApiVersions version we do not know (a v0 body). */
int gr_api_versions_unsupported(const gr_api_table *apis, gr_writer *out);

#endif
