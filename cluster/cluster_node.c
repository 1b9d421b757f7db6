/*
 * cluster_node.c - a node's membership in the federated cluster.
 *
 * Wires the cluster pieces into the node's single event loop: the cluster
 * listener (a vhost on cluster.port carrying both the link protocol and the
 * protocol of the adopted Redis descriptors), the node identity, the shared
 * secret, the Redis directory that replaces the in-memory one, and the link
 * layer that the matchmaker uses to reach owners on other nodes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "cluster.h"
#include "cluster_node.h"
#include "directory_redis.h"
#include "link.h"
#include "link_auth.h"
#include "link_frame.h"
#include "listen_address.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "resolver.h"

static struct {
    struct cluster_identity identity;
    struct lws_context *context;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[3];
    const struct relay_config *config;
    uint8_t *secret; /* any length: link_auth hashes long keys as HMAC does */
    size_t secret_length;
} cluster;

/* The secret comes inline or from a file (whose trailing newlines are not
 * part of it, so `echo secret > file` works). */
#define CLUSTER_SECRET_MAX_BYTES 4096

static int cluster_node_load_secret(const struct relay_cluster_config *config)
{
    if (config->secret != NULL) {
        cluster.secret_length = strlen(config->secret);
        cluster.secret = malloc(cluster.secret_length + 1);
        if (cluster.secret == NULL)
            return -1;
        memcpy(cluster.secret, config->secret, cluster.secret_length);
        return 0;
    }
    if (config->secret_file == NULL)
        return 0;
    FILE *file = fopen(config->secret_file, "r");
    cluster.secret = malloc(CLUSTER_SECRET_MAX_BYTES + 1);
    if (file == NULL || cluster.secret == NULL) {
        log_error("cluster.secret_file %s: cannot read", config->secret_file);
        if (file != NULL)
            fclose(file);
        return -1;
    }
    cluster.secret_length = fread(cluster.secret, 1, CLUSTER_SECRET_MAX_BYTES + 1, file);
    fclose(file);
    if (cluster.secret_length > CLUSTER_SECRET_MAX_BYTES) {
        log_error("cluster.secret_file %s: larger than %d bytes", config->secret_file,
                  CLUSTER_SECRET_MAX_BYTES);
        return -1;
    }
    /* Trailing newlines are not part of the secret: `echo s > file` works. */
    while (cluster.secret_length > 0 && (cluster.secret[cluster.secret_length - 1] == '\n' ||
                                         cluster.secret[cluster.secret_length - 1] == '\r'))
        cluster.secret_length--;
    if (cluster.secret_length == 0) {
        log_error("cluster.secret_file %s: empty", config->secret_file);
        return -1;
    }
    return 0;
}

static struct lws_vhost *cluster_node_create_vhost(struct lws_context *context,
                                                   const struct relay_config *config)
{
    const struct relay_cluster_config *settings = &config->cluster;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));

    cluster.protocols[0] = link_protocol;
    /* A link message is a batch of at most LINK_BATCH_MAX_LENGTH bytes or
     * one frame carrying at most one client receive chunk: sized so each
     * arrives in one callback and leaves in one send (lws cuts a write at
     * tx_packet_size and buffers the rest with a copy). */
    size_t link_message_bytes = config->rx_buffer_bytes > LINK_BATCH_MAX_LENGTH
                                    ? config->rx_buffer_bytes
                                    : LINK_BATCH_MAX_LENGTH;
    cluster.protocols[0].rx_buffer_size = link_message_bytes + 64;
    /* ... plus TLS record overhead: the dialer writes ciphertext itself. */
    cluster.protocols[0].tx_packet_size = link_message_bytes + 4096;
    cluster.protocols[1] = directory_redis_protocol;
    memset(&cluster.protocols[2], 0, sizeof(cluster.protocols[2]));

    info.vhost_name = "cluster";
    info.iface = settings->bind_address;
    info.port = settings->port;
    info.protocols = cluster.protocols;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
                   listen_address_vhost_options(settings->bind_address);
    info.keepalive_timeout = config->handshake_timeout_seconds;
    if (settings->tls_cert_file != NULL) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                        LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                        /* Let a connection without a certificate finish TLS
                         * so its refusal is counted (link.c). */
                        LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
        info.ssl_cert_filepath = settings->tls_cert_file;
        info.ssl_private_key_filepath = settings->tls_key_file;
        info.ssl_ca_filepath = settings->tls_ca_file;
        info.client_ssl_cert_filepath = settings->tls_cert_file;
        info.client_ssl_private_key_filepath = settings->tls_key_file;
        info.client_ssl_ca_filepath = settings->tls_ca_file;
        info.alpn = "http/1.1";
        info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    }
    struct lws_vhost *vhost = lws_create_vhost(context, &info);
    if (vhost == NULL)
        log_error("cannot listen for cluster links on %s port %d", settings->bind_address,
                  settings->port);
    else
        log_info("listening for cluster links on %s:%d (%s)", settings->bind_address,
                 settings->port, settings->tls_cert_file ? "mutual TLS" : "plain");
    return vhost;
}

struct directory *cluster_node_start(struct lws_context *context, const struct relay_config *config)
{
    char error[256];
    memset(&cluster, 0, sizeof(cluster));
    cluster.config = config;
    cluster.context = context;
    if (cluster_identity_init(&cluster.identity, config, error, sizeof(error)) != 0) {
        log_error("cluster: %s", error);
        return NULL;
    }
    if (cluster_node_load_secret(&config->cluster) != 0) {
        free(cluster.secret);
        cluster.secret = NULL;
        return NULL;
    }
    cluster.vhost = cluster_node_create_vhost(context, config);
    if (cluster.vhost == NULL)
        return NULL;
    log_info("cluster node %s (epoch %llu) advertising %s", cluster.identity.node_id,
             (unsigned long long)cluster.identity.epoch, cluster.identity.advertise_url);
    metrics_enable_cluster(link_manager_render_metrics);
    return directory_redis_new(context, cluster.vhost, config, &cluster.identity);
}

void cluster_node_attach(struct matchmaker *matchmaker)
{
    link_manager_start(cluster.config, &cluster.identity, cluster.context, cluster.vhost,
                       matchmaker, cluster.secret_length > 0 ? cluster.secret : NULL,
                       cluster.secret_length);
    matchmaker_set_remote_connector(matchmaker, link_open_stream, NULL);
}

void cluster_node_stop(void)
{
    link_manager_stop();
}

void cluster_node_free(void)
{
    link_manager_free();
    /* Here, after lws_context_destroy, because only now are all of the
     * resolver's users gone: the links cancel their lookups in
     * cluster_node_stop, but the Redis client only when server_free
     * destroys the directory, after cluster_node_stop. Waiting in
     * cluster_node_stop would miss the lookups the Redis client parks. The
     * shutdown touches no lws context, so the destroyed one is no
     * obstacle. */
    resolver_shutdown();
    if (cluster.secret != NULL) {
        OPENSSL_cleanse(cluster.secret, cluster.secret_length);
        free(cluster.secret);
    }
    cluster.secret = NULL;
}
