/*
 * identity.c - who this node is in the cluster, chosen once at start.
 *
 * node_id names the node in Redis (<prefix>node:<node_id>) and in the
 * values of the ids it owns; the epoch (milliseconds since the Unix epoch
 * at start) tells a restarted node's claims from the old process's, which
 * other nodes must treat as stale; the advertise URL is where peers dial
 * this node's cluster port. See cluster.h and shared/docs/cluster.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cluster.h"

#define IDENTITY_SUFFIX_LENGTH 6 /* hex digits after the host name */

/* 1..64 characters of [A-Za-z0-9._-]: safe in Redis keys, in URLs, in log
 * lines, and free of the ':' that separates node_id from epoch. */
static bool identity_node_id_is_valid(const char *node_id)
{
    size_t length = strlen(node_id);
    if (length == 0 || length > NODE_ID_MAX_LENGTH)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = node_id[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static void identity_hostname(char *buffer, size_t size)
{
    if (gethostname(buffer, size) != 0 || buffer[0] == '\0')
        snprintf(buffer, size, "relayd");
    buffer[size - 1] = '\0';
}

/* "<hostname>-<6 random hex>": unique across restarts and across replicas
 * of one container image that share a host name. */
static int identity_choose_node_id(struct cluster_identity *identity, char *err, size_t err_size)
{
    char host[256];
    unsigned char random_bytes[IDENTITY_SUFFIX_LENGTH / 2];

    identity_hostname(host, sizeof(host));
    if (RAND_bytes(random_bytes, sizeof(random_bytes)) != 1) {
        snprintf(err, err_size, "cluster: no randomness for the node id");
        return -1;
    }
    /* A long host name is cut so that "-" and the suffix still fit. */
    snprintf(identity->node_id, sizeof(identity->node_id), "%.*s-%02x%02x%02x",
             NODE_ID_MAX_LENGTH - 1 - IDENTITY_SUFFIX_LENGTH, host, random_bytes[0],
             random_bytes[1], random_bytes[2]);
    if (!identity_node_id_is_valid(identity->node_id)) {
        snprintf(err, err_size,
                 "cluster: host name \"%.64s\" makes no valid node id; set cluster.node_id", host);
        return -1;
    }
    return 0;
}

/* Milliseconds since the Unix epoch; never the same value twice in one
 * process, so two identities made in one millisecond (tests) differ. */
static uint64_t identity_new_epoch(void)
{
    static uint64_t last_epoch;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t epoch = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    if (epoch <= last_epoch)
        epoch = last_epoch + 1;
    last_epoch = epoch;
    return epoch;
}

static bool identity_url_is_valid(const char *url)
{
    size_t length = strlen(url);
    if (length > ADVERTISE_URL_MAX_LENGTH)
        return false;
    if (strncmp(url, "ws://", 5) != 0 && strncmp(url, "wss://", 6) != 0)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return false;
    return strstr(url, "://")[3] != '\0';
}

/* ws[s]://<bind>:<port>; a wildcard bind is no address to dial, so the
 * host name stands in for it. */
static int identity_derive_url(struct cluster_identity *identity,
                               const struct relay_cluster_config *cluster, char *err,
                               size_t err_size)
{
    const char *scheme = cluster->tls_cert_file != NULL ? "wss" : "ws";
    const char *bind = cluster->bind_address;
    char host[256];

    if (bind == NULL || bind[0] == '\0' || strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0)
        identity_hostname(host, sizeof(host));
    else if (strchr(bind, ':') != NULL)
        snprintf(host, sizeof(host), "[%s]", bind);
    else
        snprintf(host, sizeof(host), "%s", bind);
    if (cluster->port <= 0 || cluster->port > 65535) {
        snprintf(err, err_size, "cluster: no cluster port to advertise");
        return -1;
    }
    int length = snprintf(identity->advertise_url, sizeof(identity->advertise_url), "%s://%s:%d",
                          scheme, host, cluster->port);
    if (length < 0 || (size_t)length >= sizeof(identity->advertise_url)) {
        snprintf(err, err_size, "cluster: advertise URL too long; set cluster.advertise");
        return -1;
    }
    return 0;
}

int cluster_identity_init(struct cluster_identity *identity, const struct relay_config *config,
                          char *err, size_t err_size)
{
    const struct relay_cluster_config *cluster = &config->cluster;

    memset(identity, 0, sizeof(*identity));
    if (cluster->node_id != NULL) {
        if (!identity_node_id_is_valid(cluster->node_id)) {
            snprintf(err, err_size,
                     "cluster: node id \"%.80s\" must be 1 to %d characters of A-Z a-z 0-9 . _ -",
                     cluster->node_id, NODE_ID_MAX_LENGTH);
            return -1;
        }
        snprintf(identity->node_id, sizeof(identity->node_id), "%s", cluster->node_id);
    } else if (identity_choose_node_id(identity, err, err_size) != 0) {
        return -1;
    }

    if (cluster->advertise_url != NULL) {
        if (!identity_url_is_valid(cluster->advertise_url)) {
            snprintf(err, err_size,
                     "cluster: advertise URL \"%.80s\" must be ws:// or wss:// with a host, at "
                     "most %d characters",
                     cluster->advertise_url, ADVERTISE_URL_MAX_LENGTH);
            return -1;
        }
        snprintf(identity->advertise_url, sizeof(identity->advertise_url), "%s",
                 cluster->advertise_url);
    } else if (identity_derive_url(identity, cluster, err, err_size) != 0) {
        return -1;
    }

    identity->epoch = identity_new_epoch();
    return 0;
}
