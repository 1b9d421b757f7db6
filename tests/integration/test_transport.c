/*
 * test_transport.c - wss:// and IPv6.
 *
 * The group setup makes a private PKI with the openssl command line (root
 * CA, intermediate CA, server certificate for 127.0.0.1/::1/localhost signed
 * by the intermediate) and creates the client context trusting only the
 * root, so a wss:// connection verifies only when relayd serves the
 * intermediate from its chain file. A raw OpenSSL client checks that TLS 1.1
 * is refused while TLS 1.2 with the same code is accepted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "relay_test.h"

static const char rid_tls[] = "7715771577157715771577157715771577157715771577157715771577157715";

static char pki_directory[256];
static char root_pem[320], server_pem[320], server_key[320], intermediate_pem[320];

static void pki_path(char *out, const char *name)
{
    snprintf(out, 320, "%s/%s", pki_directory, name);
}

static int pki_write(const char *name, const char *text)
{
    char path[320];
    FILE *file;

    pki_path(path, name);
    file = fopen(path, "w");
    if (!file)
        return -1;
    fputs(text, file);
    return fclose(file);
}

static int pki_make(void)
{
    char root_key[320], intermediate_key[320];
    char intermediate_extensions[320], server_extensions[320];

    if (harness_make_directory(pki_directory, sizeof(pki_directory)) < 0)
        return -1;
    pki_path(root_pem, "root.pem");
    pki_path(root_key, "root.key");
    pki_path(intermediate_pem, "intermediate.pem");
    pki_path(intermediate_key, "intermediate.key");
    pki_path(server_pem, "server.pem");
    pki_path(server_key, "server.key");
    pki_path(intermediate_extensions, "intermediate.ext");
    pki_path(server_extensions, "server.ext");
    if (pki_write("intermediate.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                      "keyUsage=critical,keyCertSign,cRLSign\n") < 0 ||
        pki_write("server.ext", "basicConstraints=CA:FALSE\n"
                                "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                                "extendedKeyUsage=serverAuth\n") < 0)
        return -1;
    if (harness_make_ca(root_pem, root_key, "/CN=relayd test root") < 0 ||
        harness_make_certificate(intermediate_pem, intermediate_key, "/CN=relayd test intermediate",
                                 root_pem, root_key, "2", intermediate_extensions) < 0 ||
        harness_make_certificate(server_pem, server_key, "/CN=localhost", intermediate_pem,
                                 intermediate_key, "3", server_extensions) < 0)
        return -1;
    return 0;
}

static int transport_group_setup(void **state)
{
    if (pki_make() < 0)
        return -1;
    return relay_test_group_setup_with_ca(state, root_pem);
}

static int transport_group_teardown(void **state)
{
    harness_remove_directory(pki_directory);
    return relay_test_group_teardown(state);
}

static void start_tls_relay(struct relay_test *test, bool with_chain)
{
    struct harness_config config = {.tls_cert = server_pem,
                                    .tls_key = server_key,
                                    .tls_chain = with_chain ? intermediate_pem : NULL};

    relay_test_start(test, &config);
    assert_true(!strncmp(test->relay.url, "wss://", 6));
}

static void test_wss_pair_and_forward(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    size_t length = 300000;
    unsigned char *data = relay_test_alloc(test, length);

    relay_test_fill_payload(data, length, 3, 3);
    start_tls_relay(test, true);
    relay_test_pair(test, rid_tls, &first, &second);
    relay_test_exchange(&first, &second, "over tls");
    assert_int_equal(ws_client_send(first.connection, data, length, true), 0);
    assert_int_equal(ws_client_send(second.connection, data, length / 3, true), 0);
    relay_test_expect_message(second.connection, true, data, length);
    relay_test_expect_message(first.connection, true, data, length / 3);
    assert_true(ws_client_close(first.connection, 1000, "bye", RELAY_TEST_TIMEOUT_MS));
    relay_test_expect_end(second.connection, rid_tls);
}

/* Without the chain file the client cannot build a path to its root: proof
 * that verification is really on in the test above. */
static void test_wss_without_chain_fails_verification(void **state)
{
    struct relay_test *test = *state;
    char error[256] = "";

    start_tls_relay(test, false);
    assert_null(ws_client_connect(relay_test_client, test->relay.url, RELAY_TEST_TIMEOUT_MS, error,
                                  sizeof(error)));
    fprintf(stderr, "  without chain: %s\n", error);
}

/* A TLS handshake capped at max_version; returns whether it succeeded. */
static bool tls_handshake_succeeds(int port, int max_version)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval timeout = {5, 0};
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    bool succeeded = false;
    SSL *ssl;
    int fd;

    assert_non_null(context);
    /* security level 0 so that our side does not refuse TLS 1.1 itself */
    SSL_CTX_set_security_level(context, 0);
    SSL_CTX_set_cipher_list(context, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(context, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(context, max_version);
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    assert_int_equal(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0);
    ssl = SSL_new(context);
    SSL_set_fd(ssl, fd);
    succeeded = SSL_connect(ssl) == 1;
    if (succeeded)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(context);
    ERR_clear_error();
    return succeeded;
}

static void test_tls_1_1_refused(void **state)
{
    struct relay_test *test = *state;

    start_tls_relay(test, true);
    assert_true(tls_handshake_succeeds(test->relay.port, TLS1_2_VERSION));
    assert_false(tls_handshake_succeeds(test->relay.port, TLS1_1_VERSION));
}

static void test_ipv6_loopback(void **state)
{
    struct relay_test *test = *state;
    struct harness_config config = {.bind_address = "::1"};
    struct relay_test_peer first, second;

    if (!harness_have_ipv6_loopback()) {
        fprintf(stderr, "  no IPv6 loopback here: skipped\n");
        skip();
    }
    relay_test_start(test, &config);
    assert_non_null(strstr(test->relay.url, "ws://[::1]:"));
    relay_test_pair(test, rid_tls, &first, &second);
    relay_test_exchange(&first, &second, "over ipv6");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wss_pair_and_forward, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_wss_without_chain_fails_verification,
                                        relay_test_setup_no_relay, relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_tls_1_1_refused, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_loopback, relay_test_setup_no_relay,
                                        relay_test_teardown),
    };

    return cmocka_run_group_tests_name("transport", tests, transport_group_setup,
                                       transport_group_teardown);
}
