/*
 * echo_fixture.h - a tiny libwebsockets echo server in a child process, the
 * counterpart the client library's own tests talk to.
 *
 * It echoes every message back with the same opcode, re-framing it as it
 * arrives in chunks (so the client sees several frames per large message).
 * A text message "close CODE REASON" makes it close the connection with that
 * status and reason instead.
 */
#ifndef RELAY_TEST_ECHO_FIXTURE_H
#define RELAY_TEST_ECHO_FIXTURE_H

#include <sys/types.h>

/* Fork the server listening on 127.0.0.1; *port receives its port. Returns
 * the child's pid, or -1. Call before creating the client context. */
pid_t echo_fixture_spawn(int *port);

/* SIGTERM the child and reap it (bounded). Returns its exit status, or -1. */
int echo_fixture_stop(pid_t pid);

#endif
