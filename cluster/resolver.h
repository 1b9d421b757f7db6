/*
 * resolver.h - host name resolution that never blocks the event loop.
 *
 * The one resolver of the node: cluster links (link.c) and the Redis client
 * (redis_client.c) both look names up through it. Every call is made from
 * the thread that runs the lws loop.
 */
#ifndef RELAY_RESOLVER_H
#define RELAY_RESOLVER_H

#include <libwebsockets.h>

#define RESOLVER_ADDRESS_MAX_LENGTH 64

struct resolver_request;

/* status 0: address holds a numeric address, IPv4 when the name has one.
 * Otherwise status is an EAI_* code and address a text for log lines. Runs
 * at most once per lookup and never after resolver_cancel. */
typedef void (*resolver_callback)(void *argument, int status, const char *address);

/* Resolve host. *request is written before callback can run, and never
 * after, so callback may free the memory holding it:
 *  - an IP literal, or a lookup that cannot even start, is answered before
 *    this returns, and *request is NULL;
 *  - a name is looked up in the background (getaddrinfo_a) and answered
 *    from context's loop; *request is the handle for resolver_cancel, valid
 *    until callback runs.
 * The lookup must be answered or cancelled before context is destroyed. */
void resolver_lookup(struct resolver_request **request, struct lws_context *context,
                     const char *host, resolver_callback callback, void *argument);

/* Forget request (NULL is fine): its callback will not run. A lookup that
 * glibc is already running cannot be stopped; it is parked until it ends
 * and freed then, or by resolver_shutdown. */
void resolver_cancel(struct resolver_request *request);

/* Wait for every parked lookup to end and free everything the resolver
 * still holds. Touches no lws context, so it may (and in the node does)
 * run after the contexts are destroyed; lookups still unanswered are
 * dropped without their callback. The resolver can be used again after. */
void resolver_shutdown(void);

#endif
