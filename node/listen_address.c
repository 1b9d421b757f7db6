/*
 * listen_address.c - make libwebsockets bind exactly the configured address.
 *
 * lws 4.1.6 opens an IPv6 socket for every listener when built with IPv6,
 * and then writes an IPv4 literal such as 127.0.0.1 into the wrong bytes of
 * the IPv6 address: the socket ends up bound to [::], every interface, which
 * would expose a port meant to be private. (Fixed upstream after 4.1.6.)
 * Marking a vhost whose address is an IPv4 literal as IPv4-only gives an
 * AF_INET socket bound to exactly that address. IPv6 literals, "::" (all
 * IPv4 and IPv6 addresses) and interface names are left to lws.
 */
#include <arpa/inet.h>
#include <libwebsockets.h>

#include "listen_address.h"

bool listen_address_is_ipv4(const char *address)
{
    struct in_addr parsed;
    return address != NULL && inet_pton(AF_INET, address, &parsed) == 1;
}

int listen_address_vhost_options(const char *address)
{
    return listen_address_is_ipv4(address) ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0;
}
