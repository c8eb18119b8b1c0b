/*
 * api.c - the broker's API table: what it serves, at which versions. The
 * network layer dispatches from it and ApiVersions advertises it.
 */
#include "broker/api.h"
#include "common/api_versions.h"

static const gr_api_handler handlers[] = {
    {GR_API_METADATA, 0, 12, gr_handle_metadata},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
};

const gr_api_table gr_broker_apis = {handlers, sizeof handlers / sizeof handlers[0]};
