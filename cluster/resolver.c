/*
 * resolver.c - asynchronous host name resolution on the lws loop.
 *
 * getaddrinfo blocks, and a node resolving a peer's or Redis's name must
 * keep serving its clients meanwhile (in docker-compose every address is a
 * service name). glibc's getaddrinfo_a does the lookup in a thread of its
 * own; we poll its completion from a short lws_sul timer instead of taking
 * a signal or a notification thread, so the answer is handled on the loop
 * like everything else. IP literals are answered at once.
 *
 * A request lives on one of two lists:
 *
 *   active  waiting for its answer, polled by its own timer on the lws
 *           context of its caller;
 *   parked  nobody wants the answer any more (cancelled, or timed out) but
 *           glibc's thread is still writing into the request, so its
 *           memory must stay until the lookup ends.
 *
 * A parked request holds no lws timer: the context it was started on may
 * be destroyed (at shutdown, or between unit tests) before glibc lets go,
 * and a timer linked into a destroyed context can neither fire nor be
 * unlinked. Parked requests are instead reaped whenever the resolver runs
 * (a lookup starts, or any active lookup is polled), and resolver_shutdown
 * waits for the rest. Everything happens on the loop's thread, so the
 * lists need no lock.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "relay/log.h"
#include "resolver.h"

#define RESOLVER_POLL_US (2 * 1000)
#define RESOLVER_DEADLINE_US (10 * 1000 * 1000)

struct resolver_request {
    struct lws_dll2 list; /* resolver.active or resolver.parked */
    lws_sorted_usec_list_t poll;
    struct lws_context *context;
    resolver_callback callback;
    void *argument;
    lws_usec_t deadline;
    /* glibc's thread writes into these until the lookup ends. */
    struct gaicb lookup;
    struct addrinfo hints;
    char host[];
};

static struct {
    struct lws_dll2_owner active;
    struct lws_dll2_owner parked;
} resolver;

static int resolver_copy_literal(const char *host, char *address)
{
    unsigned char buffer[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buffer) != 1 && inet_pton(AF_INET6, host, buffer) != 1)
        return 0;
    snprintf(address, RESOLVER_ADDRESS_MAX_LENGTH, "%s", host);
    return 1;
}

static void resolver_free_request(struct resolver_request *request)
{
    if (request->lookup.ar_result != NULL)
        freeaddrinfo(request->lookup.ar_result);
    free(request);
}

/* The request is on no list and has no timer scheduled: free it, unless
 * glibc's thread is running it, in which case it waits on the parked
 * list. */
static void resolver_park_request(struct resolver_request *request)
{
    if (gai_cancel(&request->lookup) == EAI_NOTCANCELED)
        lws_dll2_add_tail(&request->list, &resolver.parked);
    else
        resolver_free_request(request);
}

static void resolver_reap_parked(void)
{
    lws_start_foreach_dll_safe(struct lws_dll2 *, item, next, lws_dll2_get_head(&resolver.parked))
    {
        struct resolver_request *request = lws_container_of(item, struct resolver_request, list);
        if (gai_error(&request->lookup) != EAI_INPROGRESS) {
            lws_dll2_remove(&request->list);
            resolver_free_request(request);
        }
    }
    lws_end_foreach_dll_safe(item, next);
}

/* The address to answer with, or an EAI_* code. IPv4 first, as hiredis
 * prefers: "localhost" must reach a server listening on 127.0.0.1, not
 * fail on ::1. */
static int resolver_pick_address(const struct addrinfo *results, char *address)
{
    const struct addrinfo *chosen = results;
    for (const struct addrinfo *each = results; each != NULL; each = each->ai_next)
        if (each->ai_family == AF_INET) {
            chosen = each;
            break;
        }
    if (chosen == NULL || getnameinfo(chosen->ai_addr, chosen->ai_addrlen, address,
                                      RESOLVER_ADDRESS_MAX_LENGTH, NULL, 0, NI_NUMERICHOST) != 0)
        return EAI_FAIL;
    return 0;
}

static void resolver_poll(lws_sorted_usec_list_t *timer)
{
    struct resolver_request *request = lws_container_of(timer, struct resolver_request, poll);
    char address[RESOLVER_ADDRESS_MAX_LENGTH] = "";
    resolver_callback callback = request->callback;
    void *argument = request->argument;

    resolver_reap_parked();
    int status = gai_error(&request->lookup);
    if (status == EAI_INPROGRESS && lws_now_usecs() < request->deadline) {
        lws_sul_schedule(request->context, 0, &request->poll, resolver_poll, RESOLVER_POLL_US);
        return;
    }
    /* The request is done with before the callback runs: the callback may
     * start or cancel other lookups, or free whatever holds the handle. */
    lws_dll2_remove(&request->list);
    if (status == EAI_INPROGRESS) {
        /* Still running past the deadline: the caller gets its answer now,
         * the lookup is parked until glibc lets go of it. */
        snprintf(address, sizeof(address), "name lookup timed out");
        status = EAI_AGAIN;
        resolver_park_request(request);
    } else {
        if (status == 0)
            status = resolver_pick_address(request->lookup.ar_result, address);
        if (status != 0)
            snprintf(address, sizeof(address), "%s", gai_strerror(status));
        resolver_free_request(request);
    }
    callback(argument, status, address);
}

void resolver_lookup(struct resolver_request **handle, struct lws_context *context,
                     const char *host, resolver_callback callback, void *argument)
{
    char address[RESOLVER_ADDRESS_MAX_LENGTH];
    size_t host_length = strlen(host);

    *handle = NULL;
    resolver_reap_parked();
    if (resolver_copy_literal(host, address)) {
        callback(argument, 0, address);
        return;
    }
    struct resolver_request *request = calloc(1, sizeof(*request) + host_length + 1);
    if (request == NULL) {
        callback(argument, EAI_MEMORY, gai_strerror(EAI_MEMORY));
        return;
    }
    memcpy(request->host, host, host_length + 1);
    request->context = context;
    request->callback = callback;
    request->argument = argument;
    request->deadline = lws_now_usecs() + RESOLVER_DEADLINE_US;
    request->hints.ai_family = AF_UNSPEC;
    request->hints.ai_socktype = SOCK_STREAM;
    request->lookup.ar_name = request->host;
    request->lookup.ar_request = &request->hints;
    struct gaicb *list[1] = {&request->lookup};
    int error = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (error != 0) {
        free(request);
        callback(argument, error, gai_strerror(error));
        return;
    }
    lws_dll2_add_tail(&request->list, &resolver.active);
    lws_sul_schedule(context, 0, &request->poll, resolver_poll, RESOLVER_POLL_US);
    *handle = request;
}

void resolver_cancel(struct resolver_request *request)
{
    if (request == NULL)
        return;
    lws_sul_cancel(&request->poll);
    lws_dll2_remove(&request->list);
    resolver_park_request(request);
}

void resolver_shutdown(void)
{
    /* Not cancelled by their owner, whose context may be gone by now: their
     * timers are left alone (they belong to that context) and their
     * callbacks are never called. */
    if (resolver.active.count > 0)
        log_warn("resolver: %u lookups still unanswered at shutdown", resolver.active.count);
    lws_start_foreach_dll_safe(struct lws_dll2 *, item, next, lws_dll2_get_head(&resolver.active))
    {
        struct resolver_request *request = lws_container_of(item, struct resolver_request, list);
        lws_dll2_remove(&request->list);
        resolver_park_request(request);
    }
    lws_end_foreach_dll_safe(item, next);

    /* Blocking is acceptable only here: the loop has stopped, and the
     * requests' memory must outlive glibc's threads. */
    lws_start_foreach_dll_safe(struct lws_dll2 *, item, next, lws_dll2_get_head(&resolver.parked))
    {
        struct resolver_request *request = lws_container_of(item, struct resolver_request, list);
        const struct gaicb *list[1] = {&request->lookup};
        while (gai_error(&request->lookup) == EAI_INPROGRESS)
            gai_suspend(list, 1, NULL);
        lws_dll2_remove(&request->list);
        resolver_free_request(request);
    }
    lws_end_foreach_dll_safe(item, next);
}
