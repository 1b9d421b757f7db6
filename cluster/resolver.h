/*
 * resolver.h - host name resolution that never blocks the event loop.
 */
#ifndef RELAY_RESOLVER_H
#define RELAY_RESOLVER_H

#include <libwebsockets.h>

#define RESOLVER_ADDRESS_MAX_LENGTH 64

struct resolver_request;

/* status 0: address holds a numeric IPv4 or IPv6 address. Otherwise a
 * gai_strerror-style text is in address. */
typedef void (*resolver_callback)(void *context, int status, const char *address);

/* Resolve host. An IP literal answers before this returns (and NULL is
 * returned); a name is looked up in the background with getaddrinfo_a and
 * answered from the loop. Returns a handle to cancel, or NULL when already
 * answered. */
struct resolver_request *resolver_lookup(struct lws_context *context, const char *host,
                                         resolver_callback callback, void *context_argument);

/* The callback will not be called. */
void resolver_cancel(struct resolver_request *request);

#endif
