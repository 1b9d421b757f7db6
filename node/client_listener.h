/*
 * client_listener.h - the client port's listening socket: relayd accepts,
 * lws serves what is accepted (client_port.c's vhost).
 */
#ifndef RELAY_CLIENT_LISTENER_H
#define RELAY_CLIENT_LISTENER_H

#include <libwebsockets.h>

#include "relay/config.h"

/* Listen on listen.bind / listen.port and hand every accepted connection
 * to client_vhost (which has no listener of its own). Returns 0, or -1
 * (logged) when the port cannot be bound. */
int client_listener_start(struct lws_context *context, struct lws_vhost *client_vhost,
                          const struct relay_config *config);

/* Stop the pause timer; lws closes the socket with the context. */
void client_listener_stop(void);

#endif
