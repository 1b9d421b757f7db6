/*
 * admin.c - the admin HTTP listener: /healthz, /readyz and /metrics.
 *
 * server.c calls admin_start() once, after creating the lws context, to add
 * a second vhost (named "admin", default 127.0.0.1:11061) with one plain
 * HTTP protocol. Keeping it apart from the client vhost means health checks
 * and scrapes never compete with clients for connection limits, and the
 * admin port can stay on loopback while the client port faces the internet.
 *
 * Each request is answered in two steps, the lws way: LWS_CALLBACK_HTTP
 * reads the method and path, writes the status line and headers and keeps
 * the body in the session; LWS_CALLBACK_HTTP_WRITEABLE then writes the body,
 * at most ADMIN_WRITE_PIECE_BYTES per callback, and completes the transaction
 * so a keep-alive connection can carry the next request. Bodies are small
 * (the /metrics text is a few KiB), so a response is built in full up front.
 *
 *   GET /healthz  200 "ok"          the process runs its event loop
 *   GET /readyz   200 "ready" or 503 "not ready"    server_is_ready()
 *   GET /metrics  200 Prometheus text (metrics_render)
 *   other paths   404; methods other than GET and HEAD: 405
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "admin.h"
#include "listen_address.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "server.h"

/* Longest path we route; anything longer is a 404 anyway. */
#define ADMIN_URI_BYTES 128
/* Status line plus our handful of headers. */
#define ADMIN_HEADER_BYTES 512
/* lws copies what the socket does not take; bounded pieces keep that copy
 * small and let other connections be served between pieces. */
#define ADMIN_WRITE_PIECE_BYTES 16384

#define ADMIN_TEXT_TYPE "text/plain; charset=utf-8"
#define ADMIN_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum admin_method {
    ADMIN_METHOD_GET,
    ADMIN_METHOD_HEAD,
    ADMIN_METHOD_OTHER,
};

/* The protocol's per_session_data: the response body still to be written. */
struct admin_session {
    unsigned char *body; /* LWS_PRE bytes of headroom, then body_length bytes */
    size_t body_length;
    size_t body_sent;
};

/* What a request is answered with, before it is put on the wire. */
struct admin_response {
    unsigned int status;
    const char *content_type;
    const char *text; /* the body; points into metrics_text or a constant */
    size_t length;
    char *metrics_text; /* owned: from metrics_render, freed after copying */
};

static void admin_free_body(struct admin_session *session)
{
    free(session->body);
    session->body = NULL;
    session->body_length = 0;
    session->body_sent = 0;
}

/* Copy the body behind LWS_PRE bytes of headroom, which lws_write may use in
 * front of each piece it sends. The headroom in front of later pieces is the
 * already-sent part of the body, which is why pieces go out strictly in
 * order. */
static bool admin_keep_body(struct admin_session *session, const char *text, size_t length)
{
    admin_free_body(session);
    session->body = malloc(LWS_PRE + length);
    if (session->body == NULL)
        return false;
    memcpy(session->body + LWS_PRE, text, length);
    session->body_length = length;
    return true;
}

/* The method and path of the request in LWS_CALLBACK_HTTP. lws stores the
 * path under a token named for the method, so the method is whichever of
 * those tokens is present. */
static enum admin_method admin_read_request(struct lws *wsi, char *uri, size_t uri_size)
{
    uri[0] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0) {
        if (lws_hdr_copy(wsi, uri, (int)uri_size, WSI_TOKEN_GET_URI) < 0)
            uri[0] = '\0'; /* too long to be one of ours: routed to 404 */
        return ADMIN_METHOD_GET;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0) {
        if (lws_hdr_copy(wsi, uri, (int)uri_size, WSI_TOKEN_HEAD_URI) < 0)
            uri[0] = '\0';
        return ADMIN_METHOD_HEAD;
    }
    return ADMIN_METHOD_OTHER;
}

static void admin_set_text(struct admin_response *response, unsigned int status, const char *text)
{
    response->status = status;
    response->content_type = ADMIN_TEXT_TYPE;
    response->text = text;
    response->length = strlen(text);
}

/* Render /metrics; a failed allocation becomes a 500 rather than a close so
 * the scraper records a clear error. */
static void admin_set_metrics(struct admin_response *response)
{
    size_t length = 0;
    response->metrics_text = metrics_render(&length, server_is_ready() ? 1 : 0);
    if (response->metrics_text == NULL) {
        log_error("admin: out of memory rendering /metrics");
        admin_set_text(response, HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory\n");
        return;
    }
    response->status = HTTP_STATUS_OK;
    response->content_type = ADMIN_METRICS_TYPE;
    response->text = response->metrics_text;
    response->length = length;
}

/* Decide the answer. HEAD gets the same status and headers as GET. */
static void admin_route_request(enum admin_method method, const char *uri,
                                struct admin_response *response)
{
    memset(response, 0, sizeof(*response));
    if (method == ADMIN_METHOD_OTHER)
        admin_set_text(response, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n");
    else if (strcmp(uri, "/healthz") == 0)
        admin_set_text(response, HTTP_STATUS_OK, "ok\n");
    else if (strcmp(uri, "/readyz") == 0 && server_is_ready())
        admin_set_text(response, HTTP_STATUS_OK, "ready\n");
    else if (strcmp(uri, "/readyz") == 0)
        admin_set_text(response, HTTP_STATUS_SERVICE_UNAVAILABLE, "not ready\n");
    else if (strcmp(uri, "/metrics") == 0)
        admin_set_metrics(response);
    else
        admin_set_text(response, HTTP_STATUS_NOT_FOUND, "not found\n");
}

/* Status line and headers, written at once. A Content-Length is always sent:
 * it is what lets lws keep an HTTP/1.1 connection open for the next request.
 * Health and metrics answers describe this instant, hence no-store. */
static int admin_send_headers(struct lws *wsi, const struct admin_response *response)
{
    unsigned char buffer[LWS_PRE + ADMIN_HEADER_BYTES];
    unsigned char *start = buffer + LWS_PRE;
    unsigned char *position = start;
    unsigned char *end = buffer + sizeof(buffer) - 1;
    static const char no_store[] = "no-store";
    static const char allowed[] = "GET, HEAD";

    if (lws_add_http_common_headers(wsi, response->status, response->content_type,
                                    (lws_filepos_t)response->length, &position, end))
        return -1;
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)no_store, (int)strlen(no_store),
                                     &position, end))
        return -1;
    if (response->status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW, (const unsigned char *)allowed,
                                     (int)strlen(allowed), &position, end))
        return -1;
    return lws_finalize_write_http_header(wsi, start, &position, end) ? -1 : 0;
}

/* lws_http_transaction_completed() returns non-zero when the connection must
 * close (HTTP/1.0, "Connection: close", or the client went away). */
static int admin_complete_transaction(struct lws *wsi)
{
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* LWS_CALLBACK_HTTP: answer the request, leaving the body for WRITEABLE. */
static int admin_handle_request(struct lws *wsi, struct admin_session *session)
{
    char uri[ADMIN_URI_BYTES];
    struct admin_response response;
    enum admin_method method = admin_read_request(wsi, uri, sizeof(uri));
    admin_route_request(method, uri, &response);

    int result = 0;
    if (method != ADMIN_METHOD_HEAD && response.length > 0 &&
        !admin_keep_body(session, response.text, response.length)) {
        log_error("admin: out of memory answering %s", uri);
        result = -1;
    }
    free(response.metrics_text);
    if (result < 0 || admin_send_headers(wsi, &response) < 0) {
        admin_free_body(session);
        return -1;
    }
    /* HEAD ends with the headers; its Content-Length announces no body. */
    if (session->body == NULL)
        return admin_complete_transaction(wsi);
    lws_callback_on_writable(wsi);
    return 0;
}

/* LWS_CALLBACK_HTTP_WRITEABLE: one piece of the body per callback. */
static int admin_send_body(struct lws *wsi, struct admin_session *session)
{
    if (session->body == NULL)
        return 0; /* a writeable callback we did not ask for */

    size_t remaining = session->body_length - session->body_sent;
    size_t piece = remaining < ADMIN_WRITE_PIECE_BYTES ? remaining : ADMIN_WRITE_PIECE_BYTES;
    bool final = piece == remaining;
    unsigned char *data = session->body + LWS_PRE + session->body_sent;

    if (lws_write(wsi, data, piece, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0) {
        admin_free_body(session);
        return -1;
    }
    session->body_sent += piece;
    if (!final) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    admin_free_body(session);
    return admin_complete_transaction(wsi);
}

static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct admin_session *session = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return admin_handle_request(wsi, session);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return admin_send_body(wsi, session);
    /* A request body (a POST answered with 405) is ignored. The dummy
     * handler would complete the transaction on BODY_COMPLETION, possibly
     * while our response is still being written; we complete it ourselves
     * after the last piece, and lws discards any body still unread. */
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return 0;
    /* The admin port speaks plain HTTP only: a WebSocket upgrade would
     * otherwise bind to our protocol and hold a connection open here. */
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return -1;
    /* The client may leave mid-response; and on keep-alive lws frees the
     * session memory when it rebinds for the next request. Either way the
     * body must go first. */
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (session != NULL)
            admin_free_body(session);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols admin_protocols[] = {
    {
        .name = "relayd-admin",
        .callback = admin_callback,
        .per_session_data_size = sizeof(struct admin_session),
    },
    {0},
};

struct lws_vhost *admin_start(struct lws_context *context, const struct relay_config *config)
{
    if (!config->admin_enabled)
        return NULL;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "admin";
    info.iface = config->admin_bind_address;
    info.port = config->admin_port;
    info.protocols = admin_protocols;
    /* A busy port must fail startup, not leave a vhost that never listens. */
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    /* Bind exactly the configured address (listen_address.c). */
    info.options |= listen_address_vhost_options(config->admin_bind_address);

    struct lws_vhost *vhost = lws_create_vhost(context, &info);
    const char *address = config->admin_bind_address ? config->admin_bind_address : "*";
    bool is_ipv6 = strchr(address, ':') != NULL;
    if (vhost == NULL) {
        log_error("admin: cannot listen on %s%s%s:%d", is_ipv6 ? "[" : "", address,
                  is_ipv6 ? "]" : "", config->admin_port);
        return NULL;
    }
    log_info("admin: listening on http://%s%s%s:%d", is_ipv6 ? "[" : "", address,
             is_ipv6 ? "]" : "", config->admin_port);
    return vhost;
}
