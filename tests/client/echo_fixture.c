/*
 * echo_fixture.c - the echo server behind the client library's tests.
 *
 * The child process runs its own lws server context (lws's poll loop, one
 * vhost on 127.0.0.1, port chosen by the kernel) and reports the port to the
 * parent over a pipe. Each received chunk becomes one outgoing frame queued on
 * the same connection (first chunk with the message's opcode, the rest as
 * continuations, FIN with the final chunk), written from that connection's
 * WRITEABLE callback. The child exits on SIGTERM or when its parent dies.
 */
#include "echo_fixture.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

struct echo_frame {
    struct echo_frame *next;
    size_t length;
    int write_flags;
    unsigned char storage[]; /* LWS_PRE headroom, then the payload */
};

struct echo_session {
    struct echo_frame *head;
    struct echo_frame *tail;
    bool in_message; /* a message's first chunk has been queued */
    bool message_binary;
    char command[128]; /* text message being checked for "close ..." */
    size_t command_length;
    int close_code;
    char close_reason[100];
};

static volatile sig_atomic_t echo_fixture_stop_requested;

static void echo_fixture_on_signal(int signal_number)
{
    (void)signal_number;
    echo_fixture_stop_requested = 1;
}

static int echo_fixture_queue_chunk(struct echo_session *session, const void *data, size_t length,
                                    int write_flags)
{
    struct echo_frame *frame = malloc(sizeof(*frame) + LWS_PRE + length);

    if (!frame)
        return -1;
    frame->next = NULL;
    frame->length = length;
    frame->write_flags = write_flags;
    memcpy(frame->storage + LWS_PRE, data, length);
    if (session->tail)
        session->tail->next = frame;
    else
        session->head = frame;
    session->tail = frame;
    return 0;
}

/* Keep the start of a text message to spot "close CODE REASON". */
static void echo_fixture_track_command(struct echo_session *session, const void *data,
                                       size_t length, bool first)
{
    size_t room;

    if (first)
        session->command_length = 0;
    room = sizeof(session->command) - 1 - session->command_length;
    if (length > room)
        length = room;
    memcpy(session->command + session->command_length, data, length);
    session->command_length += length;
    session->command[session->command_length] = '\0';
}

static bool echo_fixture_parse_close(struct echo_session *session)
{
    int consumed = 0;

    if (session->message_binary || strncmp(session->command, "close ", 6))
        return false;
    if (sscanf(session->command + 6, "%d %n", &session->close_code, &consumed) < 1)
        return false;
    snprintf(session->close_reason, sizeof(session->close_reason), "%s",
             session->command + 6 + consumed);
    return true;
}

static int echo_fixture_receive(struct lws *wsi, struct echo_session *session, const void *data,
                                size_t length)
{
    bool first = !session->in_message;
    bool final = lws_is_final_fragment(wsi);
    int initial;

    if (first)
        session->message_binary = lws_frame_is_binary(wsi);
    initial = session->message_binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    echo_fixture_track_command(session, data, length, first);
    session->in_message = !final;
    if (final && echo_fixture_parse_close(session)) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (echo_fixture_queue_chunk(session, data, length, lws_write_ws_flags(initial, first, final)) <
        0)
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int echo_fixture_write_next(struct lws *wsi, struct echo_session *session)
{
    struct echo_frame *frame = session->head;

    if (!frame) {
        if (!session->close_code)
            return 0;
        lws_close_reason(wsi, (enum lws_close_status)session->close_code,
                         (unsigned char *)session->close_reason, strlen(session->close_reason));
        return -1;
    }
    if (lws_write(wsi, frame->storage + LWS_PRE, frame->length,
                  (enum lws_write_protocol)frame->write_flags) < (int)frame->length)
        return -1;
    session->head = frame->next;
    if (!session->head)
        session->tail = NULL;
    free(frame);
    if (session->head || session->close_code)
        lws_callback_on_writable(wsi);
    return 0;
}

static void echo_fixture_free_session(struct echo_session *session)
{
    while (session->head) {
        struct echo_frame *next = session->head->next;
        free(session->head);
        session->head = next;
    }
    session->tail = NULL;
}

static int echo_fixture_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                 void *in, size_t len)
{
    struct echo_session *session = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(session, 0, sizeof(*session));
        break;
    case LWS_CALLBACK_RECEIVE:
        return echo_fixture_receive(wsi, session, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return echo_fixture_write_next(wsi, session);
    case LWS_CALLBACK_CLOSED:
        echo_fixture_free_session(session);
        break;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols echo_fixture_protocols[] = {
    {"echo", echo_fixture_callback, sizeof(struct echo_session), 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void echo_fixture_run_child(int report_fd)
{
    struct lws_context_creation_info info;
    struct lws_context *context;
    int port;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGTERM, echo_fixture_on_signal);
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof(info));
    info.port = 0; /* the kernel picks a free port */
    info.iface = "127.0.0.1";
    info.protocols = echo_fixture_protocols;
    info.gid = -1;
    info.uid = -1;
    context = lws_create_context(&info);
    port = context ? lws_get_vhost_listen_port(lws_get_vhost_by_name(context, "default")) : -1;
    if (write(report_fd, &port, sizeof(port)) != sizeof(port) || port <= 0)
        _exit(1);
    close(report_fd);
    /* lws_service returns at least every second (lws' own timers) */
    while (!echo_fixture_stop_requested && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    _exit(0);
}

pid_t echo_fixture_spawn(int *port)
{
    struct pollfd wait_for_port;
    int pipe_fds[2];
    pid_t pid;

    if (pipe(pipe_fds) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(pipe_fds[0]);
        echo_fixture_run_child(pipe_fds[1]);
    }
    close(pipe_fds[1]);
    wait_for_port.fd = pipe_fds[0];
    wait_for_port.events = POLLIN;
    if (pid < 0 || poll(&wait_for_port, 1, 5000) != 1 ||
        read(pipe_fds[0], port, sizeof(*port)) != sizeof(*port) || *port <= 0) {
        close(pipe_fds[0]);
        if (pid > 0)
            echo_fixture_stop(pid);
        return -1;
    }
    close(pipe_fds[0]);
    return pid;
}

int echo_fixture_stop(pid_t pid)
{
    int status, attempt;

    kill(pid, SIGTERM);
    for (attempt = 0; attempt < 500; attempt++) { /* 5 s */
        pid_t reaped = waitpid(pid, &status, WNOHANG);

        if (reaped == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (reaped < 0 && errno != EINTR)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}
