/*
 * link_tls.c - the link dialer's TLS client, on OpenSSL memory BIOs.
 *
 * lws 4.1.6 cannot start client TLS on a raw connection (it tries the
 * handshake before the socket exists), and the dialer needs a raw connection
 * to run its own WebSocket client (link_dialer.c). So the dialer keeps TLS
 * here, on two memory BIOs: what the socket receives is written into the
 * read BIO, what OpenSSL wants to send is drained from the write BIO and
 * goes out through lws_write as raw bytes. It is kept apart from the
 * WebSocket client because the two only meet at "bytes in, bytes out": the
 * TLS half is the same whatever runs over it.
 *
 * Scratch buffers are shared by every link: the loop is single-threaded and
 * none of them is kept across a call.
 */
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "link_frame.h"
#include "link_tls.h"
#include "relay/log.h"

/* Plaintext read out of, or ciphertext drained from, a session at a time:
 * a whole link batch and its record overhead. */
#define LINK_TLS_SCRATCH_LENGTH (LINK_BATCH_MAX_LENGTH + 4096)

static uint8_t link_tls_plaintext[LINK_TLS_SCRATCH_LENGTH];
static uint8_t link_tls_ciphertext[LINK_TLS_SCRATCH_LENGTH];

SSL_CTX *link_tls_context_new(const struct relay_cluster_config *cluster)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    if (cluster->tls_cert_file == NULL)
        return NULL;
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (context == NULL)
        return NULL;
    if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(context, cluster->tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(context, cluster->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(context) != 1 ||
        (cluster->tls_ca_file != NULL &&
         SSL_CTX_load_verify_locations(context, cluster->tls_ca_file, NULL) != 1) ||
        SSL_CTX_set_alpn_protos(context, alpn, sizeof(alpn) - 1) != 0) {
        log_error("cluster tls: cannot load the certificate, key or CA for dialling links");
        SSL_CTX_free(context);
        return NULL;
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    return context;
}

/* SNI carries host names only (RFC 6066, section 3). */
static bool link_tls_is_address(const char *host)
{
    struct in6_addr address;
    return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1;
}

int link_tls_start(struct link_tls *tls, SSL_CTX *context, const char *host)
{
    tls->ssl = SSL_new(context);
    BIO *in = BIO_new(BIO_s_mem());
    BIO *out = BIO_new(BIO_s_mem());
    if (tls->ssl == NULL || in == NULL || out == NULL) {
        BIO_free(in);
        BIO_free(out);
        link_tls_end(tls);
        return -1;
    }
    SSL_set_bio(tls->ssl, in, out);
    SSL_set_connect_state(tls->ssl);
    if (!link_tls_is_address(host))
        SSL_set_tlsext_host_name(tls->ssl, host);
    return 0;
}

void link_tls_end(struct link_tls *tls)
{
    SSL_free(tls->ssl); /* and its BIOs */
    tls->ssl = NULL;
    tls->ready = false;
}

int link_tls_feed(struct link_tls *tls, const uint8_t *data, size_t length)
{
    return BIO_write(SSL_get_rbio(tls->ssl), data, (int)length) == (int)length ? 0 : -1;
}

int link_tls_handshake(struct link_tls *tls, const char **error)
{
    ERR_clear_error(); /* SSL_get_error reads the thread's queue, which lws shares */
    int result = SSL_do_handshake(tls->ssl);
    if (result == 1) {
        tls->ready = true;
        return 1;
    }
    int reason = SSL_get_error(tls->ssl, result);
    if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE)
        return 0;
    long verify = SSL_get_verify_result(tls->ssl);
    *error = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "TLS error";
    return -1;
}

bool link_tls_wants_write(const struct link_tls *tls)
{
    return tls->ssl != NULL && BIO_ctrl_pending(SSL_get_wbio(tls->ssl)) > 0;
}

int link_tls_flush(struct link_tls *tls, struct lws *wsi)
{
    BIO *out = SSL_get_wbio(tls->ssl);
    size_t pending;
    while ((pending = BIO_ctrl_pending(out)) > 0) {
        int take =
            pending < sizeof(link_tls_ciphertext) ? (int)pending : (int)sizeof(link_tls_ciphertext);
        int length = BIO_read(out, link_tls_ciphertext, take);
        if (length <= 0 ||
            lws_write(wsi, link_tls_ciphertext, (size_t)length, LWS_WRITE_RAW) < length)
            return -1;
    }
    return 0;
}

int link_tls_write(struct link_tls *tls, struct lws *wsi, const uint8_t *data, size_t length)
{
    ERR_clear_error();
    if (length > 0 && SSL_write(tls->ssl, data, (int)length) != (int)length)
        return -1;
    return link_tls_flush(tls, wsi);
}

int link_tls_read(struct link_tls *tls, link_tls_deliver deliver, void *context, const char *peer)
{
    for (;;) {
        size_t have = 0;
        int read = 0;
        ERR_clear_error();
        while (have < sizeof(link_tls_plaintext) &&
               (read = SSL_read(tls->ssl, link_tls_plaintext + have,
                                (int)(sizeof(link_tls_plaintext) - have))) > 0)
            have += (size_t)read;
        if (have > 0) {
            bool stop = false;
            int result = deliver(context, link_tls_plaintext, have, &stop);
            if (result != 0 || stop)
                return result;
        }
        if (read > 0)
            continue; /* the buffer was full: more may be decrypted */
        int error = SSL_get_error(tls->ssl, read);
        if (error == SSL_ERROR_WANT_READ)
            return 0;
        if (error != SSL_ERROR_ZERO_RETURN)
            log_warn("link to %s: TLS error: %s", peer, ERR_reason_error_string(ERR_get_error()));
        return -1;
    }
}
