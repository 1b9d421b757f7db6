/*
 * admin.h - the admin HTTP listener: /healthz, /readyz, /metrics.
 *
 * A separate vhost (default 127.0.0.1:11061) so that health checks and
 * scraping never share a port, limits or exposure with clients.
 */
#ifndef RELAY_ADMIN_H
#define RELAY_ADMIN_H

#include <libwebsockets.h>

#include "relay/config.h"

/* Create the admin vhost on the context. Returns it, or NULL (logged) when it
 * cannot listen. Does nothing and returns NULL when admin is disabled. */
struct lws_vhost *admin_start(struct lws_context *context, const struct relay_config *config);

#endif
