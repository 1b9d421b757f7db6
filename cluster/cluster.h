/*
 * cluster.h - this node's identity in a federated cluster.
 *
 * Chosen once at start (cluster/identity.c): node_id (configured, or the
 * host name plus a random suffix), the advertise URL peers dial, and the
 * start epoch that makes a restarted node's old claims recognisably stale.
 */
#ifndef RELAY_CLUSTER_H
#define RELAY_CLUSTER_H

#include <stdint.h>

#include "relay/config.h"
#include "relay/directory.h"

struct cluster_identity {
    char node_id[NODE_ID_MAX_LENGTH + 1];
    char advertise_url[ADVERTISE_URL_MAX_LENGTH + 1];
    uint64_t epoch; /* milliseconds since the Unix epoch at start, made unique */
};

/* Fill identity from the configuration. Returns -1 with a message in err
 * when node_id or advertise is unusable. */
int cluster_identity_init(struct cluster_identity *identity, const struct relay_config *config,
                          char *err, size_t err_size);

#endif
