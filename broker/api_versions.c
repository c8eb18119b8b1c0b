/*
 * api_versions.c - the API table and the ApiVersions handler.
 *
 * gr_api_handlers is the single list of what this broker serves. Dispatch
 * looks handlers up in it and ApiVersions advertises it, so the broker can
 * never advertise an API or version it does not actually handle.
 */
#include <ctype.h>

#include "broker/request.h"
#include "common/errors.h"
#include "common/logging.h"

const gr_api_handler gr_api_handlers[] = {
    {GR_API_METADATA, 0, 12, gr_handle_metadata},
    {GR_API_API_VERSIONS, 0, 4, gr_handle_api_versions},
};
const size_t gr_api_handlers_count = sizeof gr_api_handlers / sizeof gr_api_handlers[0];

const gr_api_handler *gr_api_handler_lookup(int16_t key)
{
    for (size_t i = 0; i < gr_api_handlers_count; i++)
        if (gr_api_handlers[i].key == key)
            return &gr_api_handlers[i];
    return NULL;
}

/* Fills the api_keys array from the handler table; NULL on allocation failure. */
static gr_api_versions_response_api_version *advertised(gr_arena *a)
{
    gr_api_versions_response_api_version *v =
        gr_arena_calloc(a, gr_api_handlers_count, sizeof *v);
    for (size_t i = 0; v && i < gr_api_handlers_count; i++) {
        v[i].api_key = gr_api_handlers[i].key;
        v[i].min_version = gr_api_handlers[i].min_version;
        v[i].max_version = gr_api_handlers[i].max_version;
    }
    return v;
}

/* As Kafka does, the answer to an ApiVersions version we do not know lists
 * only ApiVersions itself: enough for the client to retry with a version we
 * support, and the same bytes whatever else the broker serves. */
int gr_api_versions_unsupported(gr_writer *out)
{
    const gr_api_handler *self = gr_api_handler_lookup(GR_API_API_VERSIONS);
    gr_api_versions_response_api_version entry = {
        .api_key = self->key, .min_version = self->min_version, .max_version = self->max_version};
    gr_api_versions_response resp;
    gr_api_versions_response_init(&resp);
    resp.error_code = GR_UNSUPPORTED_VERSION;
    resp.api_keys = &entry;
    resp.api_keys_count = 1;
    return gr_api_versions_response_encode(&resp, 0, out);
}

/* KIP-511: client software names and versions are letters, digits, '-' and
 * '.', starting and ending with a letter or digit. */
static bool valid_software_field(gr_str s)
{
    if (s.len <= 0)
        return false;
    for (int32_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        bool edge = i == 0 || i == s.len - 1;
        if (!isalnum(ch) && (edge || (ch != '-' && ch != '.')))
            return false;
    }
    return true;
}

int gr_handle_api_versions(gr_request *req, gr_writer *out)
{
    gr_api_versions_request body;
    int rc = gr_api_versions_request_decode(&body, &req->body, req->api_version, &req->arena);
    if (rc != GR_OK) {
        GR_WARN("api", "malformed ApiVersions v%d body from %s: %s", req->api_version, req->peer,
                gr_err_str(rc));
        return GR_CLOSE;
    }
    gr_api_versions_response resp;
    gr_api_versions_response_init(&resp);
    if (req->api_version >= 3 && (!valid_software_field(body.client_software_name) ||
                                   !valid_software_field(body.client_software_version))) {
        /* Kafka answers a malformed client identity with an empty list. */
        resp.error_code = GR_INVALID_REQUEST;
        return gr_api_versions_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                       : GR_CLOSE;
    }
    resp.api_keys = advertised(&req->arena);
    if (!resp.api_keys)
        return GR_CLOSE;
    resp.api_keys_count = (int32_t)gr_api_handlers_count;
    resp.throttle_time_ms = 0;
    return gr_api_versions_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                   : GR_CLOSE;
}
