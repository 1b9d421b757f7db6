/*
 * relay_test.h - what every integration test does with a relay: cmocka
 * setup/teardown around one relayd process, connecting clients, pairing
 * them, and asserting on notifications, frames and closes.
 *
 * Each test gets its own relayd (independent tests); the process has one
 * ws_client context (created by the group setup). Teardown frees the test's
 * connections, stops the relay with SIGTERM and fails the test unless the
 * relay exits with status 0 (under the sanitizer build: no leak).
 */
#ifndef RELAY_TEST_RELAY_TEST_H
#define RELAY_TEST_RELAY_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "moneysocket_json.h"
#include "ws_client.h"

#define RELAY_TEST_TIMEOUT_MS 5000
#define RELAY_TEST_MAX_CONNECTIONS 64
#define RELAY_TEST_MAX_KEPT 32

/* The process' client context (group setup creates it). */
extern struct ws_client_context *relay_test_client;

struct relay_test {
    struct harness_relay relay;
    struct ws_client_connection *connections[RELAY_TEST_MAX_CONNECTIONS];
    size_t connection_count;
    void *kept[RELAY_TEST_MAX_KEPT]; /* freed by teardown, even after a failure */
    size_t kept_count;
};

/* One end of a rendezvous: its connection and its request's uuid. */
struct relay_test_peer {
    struct ws_client_connection *connection;
    char request_uuid[37];
};

/* cmocka group setup/teardown: the client context (ca_file may be NULL). */
int relay_test_group_setup_with_ca(void **state, const char *ca_file);
int relay_test_group_setup(void **state);
int relay_test_group_teardown(void **state);

/* Per test: relay_test_setup starts a relay with the defaults;
 * relay_test_setup_no_relay leaves starting it to the test
 * (relay_test_start) so the test picks the configuration. */
int relay_test_setup(void **state);
int relay_test_setup_no_relay(void **state);
int relay_test_teardown(void **state);

void relay_test_start(struct relay_test *test, const struct harness_config *config);

/* Connect to the test's relay (asserts success); freed by teardown. */
struct ws_client_connection *relay_test_connect(struct relay_test *test);
/* Connect to any ws:// or wss:// url (asserts success); the caller keeps
 * track of the connection and frees it. */
struct ws_client_connection *relay_test_connect_url(const char *url);
/* Free one connection before teardown (drops the socket if open). */
void relay_test_drop(struct relay_test *test, struct ws_client_connection *connection);
/* The same for a connection kept in connections[0 .. *count): it leaves
 * the array (the last one takes its place) and is freed. */
void relay_test_drop_from(struct ws_client_connection **connections, size_t *count,
                          struct ws_client_connection *connection);

/* Send a py-style REQUEST_RENDEZVOUS with a fresh request uuid (written to
 * request_uuid when not NULL). */
void relay_test_send_request(struct ws_client_connection *connection, const char *rid,
                             char *request_uuid);

/* Receive the next message and assert it is a well-formed notification:
 * binary, every field of the right type and value, fresh uuid v4, timestamp
 * close to now, rendezvous_id equal to the lowercase rid, and
 * request_reference_uuid equal to reference (NULL: JSON null, key present). */
void relay_test_expect_notification(struct ws_client_connection *connection, const char *name,
                                    const char *rid, const char *reference);

/* The two halves of relay_test_expect_notification, for callers that wait
 * longer or accept one of several notifications. Receive the next message
 * within timeout_ms and parse it into *parsed; fails unless it is a binary
 * JSON message (expected names the notification in failure messages). */
void relay_test_receive_notification(struct ws_client_connection *connection, const char *expected,
                                     int timeout_ms, struct moneysocket_message *parsed);
/* Assert that a parsed message is notification name as above. */
void relay_test_check_notification(const struct moneysocket_message *message, const char *name,
                                   const char *rid, const char *reference);

/* Copy up to size - 1 bytes of a received message, NUL-ended, and release
 * it: failure messages then need no heap memory that a failed assertion
 * would leak. Returns the length copied. */
size_t relay_test_copy_release(struct ws_client_message *message, char *copy, size_t size);

/* Assert the next event is the end of the connection with this close status
 * and a reason (non-empty when reason_required). Returns elapsed ms. */
int64_t relay_test_expect_close(struct ws_client_connection *connection, int code,
                                bool reason_required);
/* The same, waiting up to timeout_ms instead of RELAY_TEST_TIMEOUT_MS. */
int64_t relay_test_expect_close_within(struct ws_client_connection *connection, int code,
                                       bool reason_required, int timeout_ms);

/* END (reference null) then close 1000. */
void relay_test_expect_end(struct ws_client_connection *connection, const char *rid);

/* Pair two new connections on rid: NOT_READY to the first, then
 * NOTIFY_RENDEZVOUS to both, each with its own request uuid. */
void relay_test_pair(struct relay_test *test, const char *rid, struct relay_test_peer *first,
                     struct relay_test_peer *second);

/* Next message is exactly this (binary or text). */
void relay_test_expect_message(struct ws_client_connection *connection, bool binary,
                               const void *data, size_t length);

/* Nothing arrives within milliseconds (and the connection stays open). */
void relay_test_expect_silence(struct ws_client_connection *connection, int milliseconds);

/* Send from one peer and check the other receives it, both ways. */
void relay_test_exchange(struct relay_test_peer *first, struct relay_test_peer *second,
                         const char *tag);

/* A metric's value (asserts that the series exists). */
double relay_test_metric(struct relay_test *test, const char *series);

/* Poll /metrics until the series has value expected (bounded). Returns the
 * last value seen. */
double relay_test_wait_metric(struct relay_test *test, const char *series, double expected,
                              int timeout_ms);

/* Deterministic payload for sequence number sequence: the first 4 bytes hold
 * the number, the rest come from a PRNG seeded with it. */
void relay_test_fill_payload(unsigned char *data, size_t length, uint32_t sequence, uint32_t seed);

/* Free pointer (malloc'd) at teardown, so a failed assertion leaks nothing
 * (the sanitizer build reports leaks of the test program too). Returns it. */
void *relay_test_keep(struct relay_test *test, void *pointer);

/* Zeroed memory freed at teardown (asserts success). */
void *relay_test_alloc(struct relay_test *test, size_t size);

/* Read a file of shared/vectors/frames (NUL-ended, freed at teardown). With
 * hex, decode lowercase hex (white space ignored). */
unsigned char *relay_test_read_vector(struct relay_test *test, const char *name, bool hex,
                                      size_t *length);

#endif
