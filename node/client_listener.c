/*
 * client_listener.c - the client port's listening socket, accepted by
 * relayd itself and handed to lws.
 *
 * Why not lws's own listener: per accepted connection, lws 4.1.6 makes
 * seven system calls - accept, fcntl(FD_CLOEXEC), setsockopt(TCP_NODELAY),
 * fcntl(O_NONBLOCK) twice, a poll() of the listener for the next one and a
 * wake-up write - and on this VM a system call costs about a microsecond
 * before it does anything. Here accept4() makes the socket non-blocking and
 * close-on-exec at once and TCP_NODELAY comes with it from the listening
 * socket (Linux copies it to accepted sockets); lws's adoption still sets
 * O_NONBLOCK and writes its wake-up: three calls, and at most one accept4()
 * per loop turn that finds the queue empty. lws_adopt_socket_vhost() serves
 * the socket exactly as if lws had accepted it: HTTP upgrade, TLS when the
 * vhost has it, the client protocol. This took a node from about 6 600
 * to 7 100 pairs/s (148 to 137 us of CPU per pair).
 *
 * The listening socket is watched by lws as a raw file descriptor on a
 * small vhost of its own (so no WebSocket client can ask for this
 * protocol by name). While shutting down, new connections are closed at
 * once. When the process runs out of descriptors, accepting pauses for
 * CLIENT_LISTENER_PAUSE_MS instead of spinning on a socket that stays
 * readable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_listener.h"
#include "relay/log.h"
#include "server.h"

#define CLIENT_LISTENER_PROTOCOL "relayd-client-listener"
/*
 * Connections accepted per loop turn; the rest wait in the kernel's queue
 * for the next turn. Few, so that sessions already open - a request waiting
 * for its NOTIFY_RENDEZVOUS - are not queued behind a crowd of handshakes
 * (established sessions first, as nginx's one accept per event). With 20
 * pairs forming at a time, 4 per turn cut the p50 from request to
 * notification from 1.2 ms (64 per turn) to 0.45 ms and the p99 from about
 * 2.4 ms to 1.5-1.9 ms, at the same pairs/s. A turn that only accepts and
 * answers handshakes takes a few hundred microseconds, so a reconnect storm
 * is still taken in at over ten thousand connections a second.
 */
#define CLIENT_LISTENER_BATCH 4
#define CLIENT_LISTENER_PAUSE_MS 100

static struct {
    struct lws_vhost *client_vhost;
    struct lws *wsi; /* the listening socket, adopted as a raw file */
    lws_sorted_usec_list_t resume_timer;
    bool paused;
    bool warned; /* said so once since the last connection accepted */
} client_listener;

static void client_listener_on_resume(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    client_listener.paused = false;
    if (client_listener.wsi != NULL)
        lws_rx_flow_control(client_listener.wsi, 1 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

/* Out of descriptors: stop watching the socket for a while. */
static void client_listener_pause(int error_number)
{
    if (!client_listener.warned)
        log_warn("client port: cannot accept (%s); pausing %d ms at a time until it can",
                 strerror(error_number), CLIENT_LISTENER_PAUSE_MS);
    client_listener.warned = true;
    client_listener.paused = true;
    lws_rx_flow_control(client_listener.wsi, 0 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
    lws_sul_schedule(lws_get_context(client_listener.wsi), 0, &client_listener.resume_timer,
                     client_listener_on_resume,
                     (lws_usec_t)CLIENT_LISTENER_PAUSE_MS * LWS_US_PER_MS);
}

static void client_listener_accept(int listen_fd)
{
    for (int accepted = 0; accepted < CLIENT_LISTENER_BATCH && !client_listener.paused;
         accepted++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                client_listener_pause(errno);
            return; /* EAGAIN: the queue is empty */
        }
        client_listener.warned = false;
        if (relay_server.shutting_down) {
            close(fd);
            continue;
        }
        /* On failure lws has closed fd already. */
        if (lws_adopt_socket_vhost(client_listener.client_vhost, fd) == NULL)
            log_warn("client port: lws could not take an accepted connection");
    }
}

static int client_listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                    void *in, size_t length)
{
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        client_listener_accept(lws_get_socket_fd(wsi));
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        client_listener.wsi = NULL;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, length);
}

static const struct lws_protocols client_listener_protocols[] = {
    {.name = CLIENT_LISTENER_PROTOCOL, .callback = client_listener_callback},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The bind address as a socket address; config.c accepts IPv4 and IPv6
 * literals only. */
static socklen_t client_listener_address(const struct relay_config *config,
                                         struct sockaddr_storage *address)
{
    memset(address, 0, sizeof(*address));
    struct sockaddr_in *ipv4 = (struct sockaddr_in *)address;
    struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *)address;
    if (inet_pton(AF_INET, config->bind_address, &ipv4->sin_addr) == 1) {
        ipv4->sin_family = AF_INET;
        ipv4->sin_port = htons((uint16_t)config->port);
        return sizeof(*ipv4);
    }
    if (inet_pton(AF_INET6, config->bind_address, &ipv6->sin6_addr) == 1) {
        ipv6->sin6_family = AF_INET6;
        ipv6->sin6_port = htons((uint16_t)config->port);
        return sizeof(*ipv6);
    }
    return 0;
}

/* A bound, listening, non-blocking socket, or -1 (logged). "::" listens on
 * every IPv4 and IPv6 address, as it did under lws. */
static int client_listener_open(const struct relay_config *config)
{
    struct sockaddr_storage address;
    socklen_t address_length = client_listener_address(config, &address);
    if (address_length == 0) {
        log_error("listen.bind %s is not an IPv4 or IPv6 address", config->bind_address);
        return -1;
    }
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("cannot listen for clients: socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited */
    if (address.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (struct sockaddr *)&address, address_length) != 0 || listen(fd, SOMAXCONN) != 0) {
        log_error("cannot listen for clients on %s port %d: %s", config->bind_address, config->port,
                  strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int client_listener_start(struct lws_context *context, struct lws_vhost *client_vhost,
                          const struct relay_config *config)
{
    memset(&client_listener, 0, sizeof(client_listener));
    client_listener.client_vhost = client_vhost;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "client-listener";
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = client_listener_protocols;
    struct lws_vhost *vhost = lws_create_vhost(context, &info);
    if (vhost == NULL) {
        log_error("cannot create the client listener's vhost");
        return -1;
    }
    int fd = client_listener_open(config);
    if (fd < 0)
        return -1;
    lws_sock_file_fd_type descriptor = {.filefd = fd};
    client_listener.wsi = lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, descriptor,
                                                     CLIENT_LISTENER_PROTOCOL, NULL);
    if (client_listener.wsi == NULL) {
        log_error("cannot watch the client port's socket");
        close(fd);
        return -1;
    }
    return 0;
}

void client_listener_stop(void)
{
    lws_sul_cancel(&client_listener.resume_timer);
}
