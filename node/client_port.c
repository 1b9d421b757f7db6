/*
 * client_port.c - the client-facing listener and its lws protocol callback.
 *
 * Creates the vhost that serves clients (ws:// or wss://, IPv4 or IPv6; the
 * socket they connect to is client_listener.c's) and dispatches its lws
 * events: WebSocket events go to session.c, a plain HTTP
 * GET gets a short text page naming the service (so a browser or a load
 * balancer probing the port sees what it is, not an error).
 *
 * TLS choices: TLS 1.2 minimum; ALPN pinned to http/1.1 (WebSocket over
 * HTTP/2 would ignore rx flow control, see pitfalls.md); an optional chain
 * file adds intermediate certificates after lws has loaded the certificate
 * and key. permessage-deflate is never offered: payloads are encrypted and
 * do not compress.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "client_listener.h"
#include "client_port.h"
#include "relay/log.h"
#include "server.h"
#include "session.h"

#define CLIENT_PROTOCOL_NAME "moneysocket"

static const char client_port_page[] =
    "relayd " RELAYD_VERSION " - Moneysocket relay\n"
    "Connect a Moneysocket client with WebSocket to this address, path /.\n";

/* Load every certificate of the chain file as an intermediate of the
 * vhost's certificate. */
static int client_port_load_chain(SSL_CTX *ssl_context, const char *chain_file)
{
    FILE *file = fopen(chain_file, "r");
    if (file == NULL) {
        log_error("tls chain file %s: cannot open", chain_file);
        return -1;
    }
    int loaded = 0;
    X509 *certificate;
    while ((certificate = PEM_read_X509(file, NULL, NULL, NULL)) != NULL) {
        /* add0 takes ownership on success. */
        if (SSL_CTX_add0_chain_cert(ssl_context, certificate) != 1) {
            X509_free(certificate);
            fclose(file);
            log_error("tls chain file %s: certificate %d rejected", chain_file, loaded + 1);
            return -1;
        }
        loaded++;
    }
    fclose(file);
    /* Reading stops with a "no start line" error at end of file: clear it
     * so it does not surface in an unrelated later TLS error report. */
    ERR_clear_error();
    if (loaded == 0) {
        log_error("tls chain file %s: no PEM certificate in it", chain_file);
        return -1;
    }
    log_info("tls: %d chain certificate(s) from %s", loaded, chain_file);
    return 0;
}

static int client_port_setup_tls(SSL_CTX *ssl_context)
{
    const struct relay_config *config = relay_server.config;
    if (SSL_CTX_set_min_proto_version(ssl_context, TLS1_2_VERSION) != 1)
        return -1;
    if (config->tls.chain_file != NULL)
        return client_port_load_chain(ssl_context, config->tls.chain_file);
    return 0;
}

static int client_port_serve_page(struct lws *wsi)
{
    unsigned char buffer[LWS_PRE + 512];
    unsigned char *start = buffer + LWS_PRE, *position = start, *end = buffer + sizeof(buffer);
    size_t length = sizeof(client_port_page) - 1;

    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain; charset=utf-8",
                                    (lws_filepos_t)length, &position, end) ||
        lws_finalize_write_http_header(wsi, start, &position, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int client_port_write_page(struct lws *wsi)
{
    unsigned char buffer[LWS_PRE + sizeof(client_port_page)];
    size_t length = sizeof(client_port_page) - 1;
    memcpy(buffer + LWS_PRE, client_port_page, length);
    if (lws_write(wsi, buffer + LWS_PRE, length, LWS_WRITE_HTTP_FINAL) != (int)length)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int client_port_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                void *in, size_t length)
{
    struct session *session = user;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        return client_port_setup_tls((SSL_CTX *)user) ? 1 : 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        server_handle_wakeup();
        return 0;
    case LWS_CALLBACK_HTTP:
        return client_port_serve_page(wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return client_port_write_page(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return session_open(session, wsi);
    case LWS_CALLBACK_RECEIVE:
        return session_receive(session, in, length);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return session_writeable(session);
    case LWS_CALLBACK_RECEIVE_PONG:
        session_pong(session);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        session_close_received(session);
        return 0;
    case LWS_CALLBACK_CLOSED:
        session_closed(session);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, length);
}

static const struct lws_protocols client_port_protocols[] = {
    {
        .name = CLIENT_PROTOCOL_NAME,
        .callback = client_port_callback,
        .per_session_data_size = sizeof(struct session),
    },
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws reads rx_buffer_size from the protocol struct, so the configured
 * size needs a writable copy of the table. */
static struct lws_protocols client_port_protocols_configured[2];

struct lws_vhost *client_port_start(struct lws_context *context, const struct relay_config *config)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));

    memcpy(client_port_protocols_configured, client_port_protocols,
           sizeof(client_port_protocols_configured));
    client_port_protocols_configured[0].rx_buffer_size = config->rx_buffer_bytes;

    info.vhost_name = "client";
    /* relayd accepts (client_listener.c); this vhost serves the sockets. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = client_port_protocols_configured;
    /* An idle plain-HTTP connection (a probe) gets no longer than a
     * WebSocket handshake; the handshake itself is bounded by the context's
     * timeout_secs (server.c). */
    info.keepalive_timeout = config->handshake_timeout_seconds;
    if (config->tls.cert_file != NULL) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = config->tls.cert_file;
        info.ssl_private_key_filepath = config->tls.key_file;
        info.alpn = "http/1.1";
        info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    }
    struct lws_vhost *vhost = lws_create_vhost(context, &info);
    if (vhost == NULL) {
        log_error("cannot create the client port (check the tls files)");
        return NULL;
    }
    if (client_listener_start(context, vhost, config) != 0)
        return NULL;
    log_info("listening for clients on %s://%s%s%s:%d/", config->tls.cert_file ? "wss" : "ws",
             strchr(config->bind_address, ':') ? "[" : "", config->bind_address,
             strchr(config->bind_address, ':') ? "]" : "", config->port);
    return vhost;
}
