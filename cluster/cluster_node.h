/*
 * cluster_node.h - turns a node into a cluster member (cluster/).
 *
 * server.c calls these when config_cluster_enabled(): the cluster listener
 * vhost, the node's identity, the Redis directory and the link layer.
 */
#ifndef RELAY_CLUSTER_NODE_H
#define RELAY_CLUSTER_NODE_H

#include <libwebsockets.h>

#include "relay/config.h"
#include "relay/directory.h"
#include "relay/matchmaker.h"

/* Create the cluster vhost and the Redis directory. Returns the directory
 * (for the matchmaker), or NULL (logged) on failure. */
struct directory *cluster_node_start(struct lws_context *context,
                                     const struct relay_config *config);
/* Connect the link layer to the node's matchmaker. */
void cluster_node_attach(struct matchmaker *matchmaker);
/* Shutting down: close links with GOAWAY. */
void cluster_node_stop(void);
/* After the lws context is gone. */
void cluster_node_free(void);

#endif
