/*
 * server.c - the node's one event loop, start-up and orderly shutdown.
 *
 * One lws context serves everything: the client port (client_port.c), the
 * admin port (admin.c), timers (lws_sul) and, in a cluster, Redis and the
 * inter-node links. No threads: a node scales across cores by running more
 * nodes.
 *
 * The loop under the context is server.event_loop:
 *
 *  - epoll (the default): lws's libev event-lib plugin on a libev loop with
 *    the epoll backend that this file creates and runs itself (a "foreign"
 *    loop to lws). A turn costs O(ready descriptors), so thousands of idle
 *    pending connections cost nothing while pairs forward. The loop is ours
 *    rather than lws's because lws puts a SIGINT watcher on a loop it owns
 *    that just breaks the loop, which would skip the orderly shutdown.
 *  - poll: lws's own poll() loop; a turn costs O(all descriptors).
 *
 * lws 4.1.6's libev plugin re-arms its one libev timer for the next lws_sul
 * from an idle watcher that runs after socket events, and libev ignores a
 * new time for a timer that is already running; input lws buffered while a
 * connection was flow-controlled is also only served from that watcher. An
 * lws_sul due earlier than the armed time would wait for unrelated traffic
 * or for the armed time (a 2 s shutdown deadline fired after 26 s on a quiet
 * node). A 10 ms libev timer of ours therefore wakes lws with
 * lws_cancel_service, an event on lws's own pipe, after which the idle
 * watcher runs: every lws_sul fires at most 10 ms late.
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
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <ev.h>

#include "admin.h"
#include "client_listener.h"
#include "client_port.h"
#include "cluster_node.h"
#include "frame_queue.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "server.h"
#include "session.h"
#include "stats.h"

/* How late an lws timer may fire on the epoll loop (see above). */
#define SERVER_EV_TICK_SECONDS 0.010

struct relay_server relay_server;

static volatile sig_atomic_t server_signal_received;
static bool server_loop_done;

/* The epoll loop: the libev loop lws runs on, and our two watchers on it. */
static struct {
    struct ev_loop *loop;
    ev_prepare before_sleep; /* flushes client writes, ends the loop when done */
    ev_timer tick;           /* wakes lws's timer and buffered-input service */
} server_ev;

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
    /* The poll loop runs timers before it waits: without a wake-up it would
     * sleep until its next event or timer before noticing. */
    lws_cancel_service(relay_server.context);
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

/* Checked after every turn of either loop. */
static bool server_loop_should_end(void)
{
    return server_loop_done || (relay_server.shutting_down && relay_server.sessions.count == 0);
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
/*
 * Descriptors: one per client connection, plus the listeners, Redis, the
 * inter-node links, admin clients and lws's own (SERVER_FD_RESERVE). The
 * soft limit is raised towards the hard one, but only as far as needed:
 * lws sizes its descriptor tables by it, and lws 4.1.6 as Debian builds it
 * (debug assertions on) scans the whole table for every new socket, so a
 * limit of a million would cost milliseconds per connection. With
 * limits.max_connections 0 (the default) the node takes what the hard limit
 * allows, up to SERVER_FD_AUTO_MAX, and serves that many less the reserve.
 */
#define SERVER_FD_RESERVE 256
#define SERVER_FD_AUTO_MAX 65536

static void server_set_fd_limit(const struct relay_config *config)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        relay_server.max_connections =
            config->max_connections > 0 ? config->max_connections : 1024 - SERVER_FD_RESERVE;
        return;
    }
    rlim_t wanted = config->max_connections > 0
                        ? (rlim_t)config->max_connections + SERVER_FD_RESERVE
                        : SERVER_FD_AUTO_MAX;
    if (limit.rlim_max != RLIM_INFINITY && wanted > limit.rlim_max)
        wanted = limit.rlim_max;
    if (wanted != limit.rlim_cur) {
        struct rlimit adjusted = {.rlim_cur = wanted, .rlim_max = limit.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &adjusted) == 0)
            limit.rlim_cur = wanted;
    }
    long usable = (long)limit.rlim_cur - SERVER_FD_RESERVE;
    if (usable < 1)
        usable = 1;
    if (config->max_connections > 0) {
        relay_server.max_connections = config->max_connections;
        if (config->max_connections > usable)
            log_warn("limits.max_connections %d is above what the descriptor limit %ld "
                     "allows (%ld); raise ulimit -n",
                     config->max_connections, (long)limit.rlim_cur, usable);
    } else {
        relay_server.max_connections = (int)usable;
    }
}

/* Just before the loop sleeps: write what this turn queued for clients,
 * then see whether the node is done. */
/*
 * Every WebSocket connection has lws allocate a receive buffer of
 * rx_buffer_bytes (64 KiB) and free it when it closes. With glibc's default
 * trim threshold, freeing the top of the heap hands memory back with brk(),
 * and the next connection takes it again; each shrink flushes TLBs on every
 * CPU (an IPI, costly in a VM): 1.5 % of the CPU of a node forming 4 000
 * pairs/s. Freed memory is kept for reuse up to SERVER_MALLOC_TRIM_BYTES.
 */
#define SERVER_MALLOC_TRIM_BYTES (64 * 1024 * 1024)

static void server_tune_malloc(void)
{
#ifdef M_TRIM_THRESHOLD
    mallopt(M_TRIM_THRESHOLD, SERVER_MALLOC_TRIM_BYTES);
#endif
}

/* lws's allocations, straight to the C library: lws's default allocator
 * logs every call at debug level (formatted only to be filtered out) and
 * keeps a running total with two malloc_usable_size() calls; together 1.4 %
 * of the CPU of pairing clients. Size 0 frees. */
static void *server_lws_realloc(void *pointer, size_t size, const char *reason)
{
    (void)reason;
    if (size == 0) {
        free(pointer);
        return NULL;
    }
    return realloc(pointer, size);
}

static void server_ev_on_prepare(struct ev_loop *loop, ev_prepare *watcher, int events)
{
    session_flush_writes();
    if (server_loop_should_end())
        ev_break(loop, EVBREAK_ALL);
}

static void server_ev_on_tick(struct ev_loop *loop, ev_timer *watcher, int events)
{
    lws_cancel_service(relay_server.context);
}

/* The epoll loop, before the context that adopts it. EVFLAG_NOENV: the
 * backend is the configured one, whatever LIBEV_FLAGS says. */
static int server_ev_create(void)
{
    server_ev.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (server_ev.loop == NULL) {
        log_error("cannot create the epoll event loop");
        return -1;
    }
    ev_prepare_init(&server_ev.before_sleep, server_ev_on_prepare);
    ev_timer_init(&server_ev.tick, server_ev_on_tick, SERVER_EV_TICK_SECONDS,
                  SERVER_EV_TICK_SECONDS);
    return 0;
}

static void server_ev_run(void)
{
    ev_prepare_start(server_ev.loop, &server_ev.before_sleep);
    ev_timer_start(server_ev.loop, &server_ev.tick);
    ev_run(server_ev.loop, 0);
}

/* After the lws context is gone, which stops every watcher lws started
 * (lws frees its watchers synchronously with libev: nothing is left to
 * run). A loop that still reports active watchers has a leak. */
static void server_ev_destroy(void)
{
    if (server_ev.loop == NULL)
        return;
    ev_prepare_stop(server_ev.loop, &server_ev.before_sleep);
    ev_timer_stop(server_ev.loop, &server_ev.tick);
    if (ev_run(server_ev.loop, EVRUN_NOWAIT))
        log_warn("event loop: watchers still active after shutdown");
    ev_loop_destroy(server_ev.loop);
    server_ev.loop = NULL;
}

static struct lws_context *server_create_context(const struct relay_config *config)
{
    /* lws's own keepalive ("validity": ping after 300 s of silence, hang up
     * at 310 s) keeps a timer per connection in lws's one sorted timer list,
     * and each new connection and each pong inserts at its far end: a scan
     * of every idle connection (61% of the CPU pairing clients next to 15000
     * idle ones). relayd pings clients itself (session.c) and links keep
     * themselves alive (link.c), so it is switched off: lws reads a zero
     * hang-up time as "no validity checks" (the ping time must be non-zero
     * for lws to take the policy at all). */
    static const lws_retry_bo_t no_lws_keepalive = {.secs_since_valid_ping = 300,
                                                    .secs_since_valid_hangup = 0};
    struct lws_context_creation_info info;
    void *foreign_loops[1] = {NULL};
    memset(&info, 0, sizeof(info));
    info.retry_and_idle_policy = &no_lws_keepalive;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (config->tls.cert_file != NULL)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (config->event_loop == RELAY_EVENT_LOOP_EPOLL) {
        if (server_ev_create() != 0)
            return NULL;
        /* Needs the libwebsockets-evlib-ev plugin at run time. */
        info.options |= LWS_SERVER_OPTION_LIBEV;
        foreign_loops[0] = server_ev.loop;
        info.foreign_loops = foreign_loops;
    }
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
    client_listener_stop();
    stats_stop();
    if (relay_server.clustered && relay_server.context != NULL)
        cluster_node_stop();
    if (relay_server.matchmaker != NULL)
        matchmaker_detach_directory(relay_server.matchmaker);
    if (relay_server.directory != NULL)
        directory_destroy(relay_server.directory);
    relay_server.directory = NULL;
    session_timers_stop(); /* their lws_sul lives in the context */
    /* With the epoll loop this is synchronous too: it runs outside the
     * loop, so lws frees everything now, and the libev loop must still
     * exist while it stops its watchers. */
    if (relay_server.context != NULL)
        lws_context_destroy(relay_server.context);
    relay_server.context = NULL;
    server_ev_destroy();
    if (relay_server.clustered)
        cluster_node_free();
    matchmaker_free(relay_server.matchmaker);
    relay_server.matchmaker = NULL;
    frame_queue_release_spares();
}

static int server_start(const struct relay_config *config)
{
    server_tune_malloc();
    server_set_fd_limit(config);
    lws_set_allocator(server_lws_realloc);
    relay_server.context = server_create_context(config);
    if (relay_server.context == NULL) {
        if (config->event_loop == RELAY_EVENT_LOOP_EPOLL)
            log_error("cannot create the epoll event loop (it needs the package "
                      "libwebsockets-evlib-ev; server.event_loop: poll does without)");
        else
            log_error("cannot create the poll event loop");
        return -1;
    }
    session_timers_start(relay_server.context, config);
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
    log_info("relayd %s ready (directory: %s, event loop: %s, max connections: %d)", RELAYD_VERSION,
             relay_server.directory->ops->name, config_event_loop_name(config->event_loop),
             relay_server.max_connections);

    if (config->event_loop == RELAY_EVENT_LOOP_EPOLL)
        server_ev_run();
    else
        while (!server_loop_should_end()) {
            if (lws_service(relay_server.context, 0) < 0)
                break;
            session_flush_writes();
        }
    log_info("shutdown complete");
    server_free();
    return 0;
}
