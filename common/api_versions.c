/*
 * api_versions.c - the ApiVersions handler, shared by broker and controller.
 *
 * It advertises exactly the server's API table, the same table dispatch
 * uses, so a server can never advertise an API or version it does not
 * handle.
 */
#include "common/api_versions.h"

#include <ctype.h>

#include "common/errors.h"
#include "common/logging.h"

/* Fills the api_keys array from the handler table; NULL on allocation failure. */
static gr_api_versions_response_api_version *advertised(const gr_api_table *apis, gr_arena *a)
{
    gr_api_versions_response_api_version *v = gr_arena_calloc(a, apis->count, sizeof *v);
    for (size_t i = 0; v && i < apis->count; i++) {
        v[i].api_key = apis->handlers[i].key;
        v[i].min_version = apis->handlers[i].min_version;
        v[i].max_version = apis->handlers[i].max_version;
    }
    return v;
}

/* As Kafka does, the answer to an ApiVersions version we do not know lists
 * only ApiVersions itself: enough for the client to retry with a version we
 * support, and the same bytes whatever else the broker serves. */
int gr_api_versions_unsupported(const gr_api_table *apis, gr_writer *out)
{
    const gr_api_handler *self = gr_api_table_lookup(apis, GR_API_API_VERSIONS);
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
    resp.api_keys = advertised(req->apis, &req->arena);
    if (!resp.api_keys)
        return GR_CLOSE;
    resp.api_keys_count = (int32_t)req->apis->count;
    resp.throttle_time_ms = 0;
    return gr_api_versions_response_encode(&resp, req->api_version, out) == GR_OK ? GR_HANDLED
                                                                                   : GR_CLOSE;
}
