/*
 * client_port.h - the client-facing listener (ws:// or wss://, path /).
 */
#ifndef RELAY_CLIENT_PORT_H
#define RELAY_CLIENT_PORT_H

#include <libwebsockets.h>

#include "relay/config.h"

/* Create the client vhost on the context. NULL (logged) when it cannot
 * listen or its TLS files do not load. */
struct lws_vhost *client_port_start(struct lws_context *context, const struct relay_config *config);

#endif
