/*
 * resolver.c - asynchronous host name resolution on the lws loop.
 *
 * getaddrinfo blocks, and a node resolving a peer's or Redis's name must
 * keep serving its clients meanwhile (in docker-compose every address is a
 * service name). glibc's getaddrinfo_a does the lookup in the background;
 * we poll its completion from a short lws_sul timer instead of taking a
 * signal or a callback thread, so the answer is handled on the loop like
 * everything else. IP literals are answered at once.
 */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "resolver.h"

#define RESOLVER_POLL_US (5 * 1000)
#define RESOLVER_DEADLINE_US (10 * 1000 * 1000)

struct resolver_request {
    lws_sorted_usec_list_t timer;
    struct lws_context *context;
    struct gaicb request;
    struct gaicb *requests[1];
    struct addrinfo hints;
    char *host;
    resolver_callback callback;
    void *context_argument;
    lws_usec_t waited;
    int cancelled;
};

static int resolver_literal(const char *host, char *out)
{
    unsigned char buffer[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buffer) == 1 || inet_pton(AF_INET6, host, buffer) == 1) {
        snprintf(out, RESOLVER_ADDRESS_MAX_LENGTH, "%s", host);
        return 1;
    }
    return 0;
}

static void resolver_finish(struct resolver_request *request)
{
    if (request->request.ar_result != NULL)
        freeaddrinfo(request->request.ar_result);
    free(request->host);
    free(request);
}

static void resolver_answer(struct resolver_request *request, int error)
{
    char address[RESOLVER_ADDRESS_MAX_LENGTH] = "";
    int status = error;
    if (error == 0) {
        /* IPv4 first, as hiredis prefers: "localhost" must reach a peer
         * listening on 127.0.0.1, not fail on ::1. */
        const struct addrinfo *info = request->request.ar_result;
        for (const struct addrinfo *each = info; each != NULL; each = each->ai_next)
            if (each->ai_family == AF_INET) {
                info = each;
                break;
            }
        if (info == NULL || getnameinfo(info->ai_addr, info->ai_addrlen, address, sizeof(address),
                                        NULL, 0, NI_NUMERICHOST) != 0)
            status = EAI_FAIL;
    }
    if (status != 0)
        snprintf(address, sizeof(address), "%s", gai_strerror(status));
    if (!request->cancelled)
        request->callback(request->context_argument, status, address);
    resolver_finish(request);
}

static void resolver_poll(lws_sorted_usec_list_t *sul)
{
    struct resolver_request *request = lws_container_of(sul, struct resolver_request, timer);
    int error = gai_error(&request->request);
    if (error == EAI_INPROGRESS) {
        request->waited += RESOLVER_POLL_US;
        if (request->waited >= RESOLVER_DEADLINE_US && !request->cancelled) {
            /* Give the caller its answer now; the lookup itself may only
             * be abandoned once glibc lets go of it. */
            request->callback(request->context_argument, EAI_AGAIN, "name lookup timed out");
            request->cancelled = 1;
            gai_cancel(&request->request);
        }
        lws_sul_schedule(request->context, 0, &request->timer, resolver_poll, RESOLVER_POLL_US);
        return;
    }
    resolver_answer(request, error);
}

struct resolver_request *resolver_lookup(struct lws_context *context, const char *host,
                                         resolver_callback callback, void *context_argument)
{
    char address[RESOLVER_ADDRESS_MAX_LENGTH];
    if (resolver_literal(host, address)) {
        callback(context_argument, 0, address);
        return NULL;
    }
    struct resolver_request *request = calloc(1, sizeof(*request));
    if (request == NULL || (request->host = strdup(host)) == NULL) {
        free(request);
        callback(context_argument, EAI_MEMORY, gai_strerror(EAI_MEMORY));
        return NULL;
    }
    request->context = context;
    request->callback = callback;
    request->context_argument = context_argument;
    request->hints.ai_family = AF_UNSPEC;
    request->hints.ai_socktype = SOCK_STREAM;
    request->request.ar_name = request->host;
    request->request.ar_request = &request->hints;
    request->requests[0] = &request->request;
    int error = getaddrinfo_a(GAI_NOWAIT, request->requests, 1, NULL);
    if (error != 0) {
        callback(context_argument, error, gai_strerror(error));
        resolver_finish(request);
        return NULL;
    }
    lws_sul_schedule(context, 0, &request->timer, resolver_poll, RESOLVER_POLL_US);
    return request;
}

void resolver_cancel(struct resolver_request *request)
{
    if (request == NULL)
        return;
    request->cancelled = 1;
    /* If glibc has not started it, it is gone now; otherwise the poll
     * timer frees it when the lookup ends. */
    if (gai_cancel(&request->request) == EAI_CANCELED) {
        lws_sul_cancel(&request->timer);
        resolver_finish(request);
    }
}
