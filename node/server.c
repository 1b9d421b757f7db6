/*
 * server.c - the node's one event loop, start-up and orderly shutdown.
 *
 * One lws context on lws's own poll loop serves everything: the client port
 * (client_port.c), the admin port (admin.c), timers (lws_sul) and, in a
 * cluster, Redis and the inter-node links. No threads: a node scales across
 * cores by running more nodes.
 *
 * Signals are handled on the loop: the handler only sets a flag and wakes
 * the loop with lws_cancel_service (async-signal-safe: it writes to a pipe);
 * the real work happens in LWS_CALLBACK_EVENT_WAIT_CANCELLED, which lws
 * delivers to the client port's protocol (server_handle_wakeup).
 *
 * Shutdown (SIGTERM/SIGINT): /readyz turns 503, new connections are refused,
 * every session is sent NOTIFY_RENDEZVOUS_END and closed with 1001, and the
 * loop ends when the last session has gone or shutdown.timeout expires,
 * whichever comes first. Then everything is freed and the process exits 0.
 */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include "admin.h"
#include "client_port.h"
#include "cluster_node.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "server.h"
#include "session.h"
#include "stats.h"

struct relay_server relay_server;

static volatile sig_atomic_t server_signal_received;
static bool server_loop_done;

bool server_is_ready(void)
{
    return !relay_server.shutting_down && relay_server.client_vhost != NULL &&
           relay_server.directory != NULL && directory_is_ready(relay_server.directory);
}

static void server_on_signal(int signal_number)
{
    server_signal_received = signal_number;
    if (relay_server.context != NULL)
        lws_cancel_service(relay_server.context);
}

static void server_install_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = server_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    /* Writes to a vanished peer must fail with EPIPE, not kill the node. */
    signal(SIGPIPE, SIG_IGN);
}

static void server_on_shutdown_deadline(lws_sorted_usec_list_t *sul)
{
    log_warn("shutdown: %u session(s) still open after %d s, closing anyway",
             relay_server.sessions.count, relay_server.config->shutdown_timeout_seconds);
    server_loop_done = true;
}

static int server_end_session(struct lws_dll2 *node, void *user)
{
    session_shutdown(lws_container_of(node, struct session, list));
    return 0;
}

static void server_begin_shutdown(void)
{
    if (relay_server.shutting_down)
        return;
    relay_server.shutting_down = true;
    log_info("shutdown: ending %u session(s)", relay_server.sessions.count);
    if (relay_server.clustered)
        cluster_node_stop();
    lws_dll2_foreach_safe(&relay_server.sessions, NULL, server_end_session);
    lws_sul_schedule(relay_server.context, 0, &relay_server.shutdown_timer,
                     server_on_shutdown_deadline,
                     (lws_usec_t)relay_server.config->shutdown_timeout_seconds * LWS_US_PER_SEC);
}

void server_handle_wakeup(void)
{
    if (!server_signal_received)
        return;
    log_info("received signal %d", (int)server_signal_received);
    server_signal_received = 0;
    server_begin_shutdown();
}

/* Thousands of clients need thousands of descriptors: take what we may. */
static void server_raise_fd_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

static struct lws_context *server_create_context(const struct relay_config *config)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (config->tls.cert_file != NULL)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.timeout_secs = (unsigned int)config->handshake_timeout_seconds;
    info.pt_serv_buf_size = 64 * 1024;
    /* A single loop serves every connection; lws sizes its fd table by the
     * process limit, raised above. */
    return lws_create_context(&info);
}

/* Teardown order matters: the Redis directory must go while the loop it
 * lives on still exists, and nothing may call into it afterwards, so the
 * matchmaker lets go of it first. Links and sessions are closed by the
 * context's destruction and may still reach the matchmaker then. */
static void server_free(void)
{
    lws_sul_cancel(&relay_server.shutdown_timer);
    stats_stop();
    if (relay_server.clustered && relay_server.context != NULL)
        cluster_node_stop();
    if (relay_server.matchmaker != NULL)
        matchmaker_detach_directory(relay_server.matchmaker);
    if (relay_server.directory != NULL)
        directory_destroy(relay_server.directory);
    relay_server.directory = NULL;
    if (relay_server.context != NULL)
        lws_context_destroy(relay_server.context);
    relay_server.context = NULL;
    if (relay_server.clustered)
        cluster_node_free();
    matchmaker_free(relay_server.matchmaker);
    relay_server.matchmaker = NULL;
}

static int server_start(const struct relay_config *config)
{
    server_raise_fd_limit();
    relay_server.context = server_create_context(config);
    if (relay_server.context == NULL) {
        log_error("cannot create the event loop");
        return -1;
    }
    relay_server.clustered = config_cluster_enabled(config);
    relay_server.directory = relay_server.clustered
                                 ? cluster_node_start(relay_server.context, config)
                                 : directory_memory_new();
    if (relay_server.directory == NULL)
        return -1;
    relay_server.matchmaker = matchmaker_new(relay_server.directory);
    if (relay_server.matchmaker == NULL) {
        log_error("out of memory");
        return -1;
    }
    if (relay_server.clustered)
        cluster_node_attach(relay_server.matchmaker);
    relay_server.client_vhost = client_port_start(relay_server.context, config);
    if (relay_server.client_vhost == NULL)
        return -1;
    if (config->admin_enabled) {
        relay_server.admin_vhost = admin_start(relay_server.context, config);
        if (relay_server.admin_vhost == NULL)
            return -1;
    }
    stats_start(relay_server.context, config->stats_interval_seconds);
    return 0;
}

int server_run(const struct relay_config *config)
{
    memset(&relay_server, 0, sizeof(relay_server));
    relay_server.config = config;
    server_loop_done = false;
    server_install_signals();

    if (server_start(config) != 0) {
        server_free();
        return 1;
    }
    log_info("relayd %s ready (directory: %s)", RELAYD_VERSION, relay_server.directory->ops->name);

    while (!server_loop_done) {
        if (lws_service(relay_server.context, 0) < 0)
            break;
        if (relay_server.shutting_down && relay_server.sessions.count == 0)
            server_loop_done = true;
    }
    log_info("shutdown complete");
    server_free();
    return 0;
}
