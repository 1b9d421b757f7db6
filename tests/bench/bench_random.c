/*
 * bench_random.c - rendezvous ids and request UUIDs from batched random
 * bytes.
 *
 * tests/client's moneysocket_json_new_rid/_uuid call getrandom() for every
 * id: three system calls per pair, a few percent of the client's time in
 * pairs runs on a VM where a system call costs microseconds. Here one
 * getrandom() fills a pool that serves about a hundred pairs. The pool lives
 * in the worker, so each forked client process draws its own bytes (ids
 * must differ across processes: equal rids would pair the wrong peers). The
 * bytes are formatted by moneysocket_json, as the test clients' ids are.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "bench.h"
#include "moneysocket_json.h"

/* count fresh bytes into out. Returns 0, or -1 when the kernel gives none. */
static int bench_random_take(struct bench_random *random, unsigned char *out, size_t count)
{
    if (random->left < count) {
        ssize_t got;
        do
            got = getrandom(random->pool, sizeof(random->pool), 0);
        while (got < 0 && errno == EINTR);
        if (got < (ssize_t)count)
            return -1;
        random->left = (size_t)got;
    }
    random->left -= count;
    memcpy(out, random->pool + random->left, count);
    return 0;
}

int bench_random_rid(struct bench_random *random, char *out)
{
    unsigned char bytes[32];
    if (bench_random_take(random, bytes, sizeof(bytes)) != 0)
        return -1;
    moneysocket_json_format_rid(bytes, out);
    return 0;
}

int bench_random_uuid(struct bench_random *random, char *out)
{
    unsigned char bytes[16];
    if (bench_random_take(random, bytes, sizeof(bytes)) != 0)
        return -1;
    moneysocket_json_format_uuid(bytes, out);
    return 0;
}
