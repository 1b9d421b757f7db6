/*
 * listen_address.h - listener options that depend on the bind address.
 */
#ifndef RELAY_LISTEN_ADDRESS_H
#define RELAY_LISTEN_ADDRESS_H

#include <stdbool.h>

/* lws vhost options needed to bind exactly this address (see the .c). */
int listen_address_vhost_options(const char *address);

bool listen_address_is_ipv4(const char *address);

#endif
