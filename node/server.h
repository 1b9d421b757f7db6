/*
 * server.h - the node's process-wide state and its one event loop.
 *
 * server.c creates the libwebsockets context on the configured event loop
 * (server.event_loop: a libev/epoll loop of its own, or lws's poll loop; no
 * threads either way), the client-facing vhost and the admin vhost, handles
 * signals on the loop, runs until shutdown and tears everything down.
 */
#ifndef RELAY_SERVER_H
#define RELAY_SERVER_H

#include <stdbool.h>

#include <libwebsockets.h>

#include "relay/config.h"
#include "relay/directory.h"
#include "relay/matchmaker.h"

struct relay_server {
    const struct relay_config *config;
    struct lws_context *context;
    struct lws_vhost *client_vhost;
    struct lws_vhost *admin_vhost;
    struct directory *directory;
    struct matchmaker *matchmaker;
    lws_dll2_owner_t sessions; /* every open client session */
    int connection_count;      /* TCP connections accepted on the client port and not yet closed */
    int max_connections;       /* limits.max_connections, or what the fd limit allows */
    bool shutting_down;
    bool clustered; /* a cluster member (cluster/), not a standalone relay */
    lws_sorted_usec_list_t stats_timer;
    lws_sorted_usec_list_t shutdown_timer;
};

extern struct relay_server relay_server;

/* Run the node with this configuration until SIGTERM/SIGINT. Returns the
 * process exit status. */
int server_run(const struct relay_config *config);

/* The loop was woken by lws_cancel_service (a signal arrived): act on it.
 * Called from a protocol's LWS_CALLBACK_EVENT_WAIT_CANCELLED. */
void server_handle_wakeup(void);

/* 200 on /readyz: accepting clients and the directory is usable. */
bool server_is_ready(void);

#endif
