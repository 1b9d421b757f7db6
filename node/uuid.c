/*
 * uuid.c - random UUIDs for notifications, and the canonical UUID text check.
 *
 * Every notification the relay sends carries a fresh notification_uuid
 * (notification.c), and every REQUEST_RENDEZVOUS carries a request_uuid the
 * relay must check before echoing it back as request_reference_uuid
 * (request_parser.c). Both sides use the canonical 8-4-4-4-12 text form.
 *
 * The random bits come from OpenSSL's RAND_bytes, the process's CSPRNG:
 * notification UUIDs need not be secret, but a predictable generator is
 * never needed and one CSPRNG is easier to audit than two generators.
 * RAND_bytes costs about 7 000 instructions a call in OpenSSL 3 (provider
 * lookup, DRBG locking) whatever the length, and a rendezvous sends three or
 * four notifications, so the bytes are drawn 64 UUIDs at a time into a pool
 * (one process, one thread) and handed out once each.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <openssl/rand.h>

#include "relay/protocol.h"

#define UUID_BYTE_COUNT 16
#define UUID_POOL_COUNT 64

static unsigned char uuid_pool[UUID_POOL_COUNT * UUID_BYTE_COUNT];
static size_t uuid_pool_used = sizeof(uuid_pool); /* empty until first use */

/* The next 16 unused random bytes. Returns 0, or -1 when the CSPRNG fails. */
static int uuid_take_random(unsigned char bytes[UUID_BYTE_COUNT])
{
    if (uuid_pool_used == sizeof(uuid_pool)) {
        if (RAND_bytes(uuid_pool, sizeof(uuid_pool)) != 1)
            return -1;
        uuid_pool_used = 0;
    }
    memcpy(bytes, uuid_pool + uuid_pool_used, UUID_BYTE_COUNT);
    /* Handed out once: wipe it from the pool. */
    memset(uuid_pool + uuid_pool_used, 0, UUID_BYTE_COUNT);
    uuid_pool_used += UUID_BYTE_COUNT;
    return 0;
}

/* Where the dashes go in the text form, 8-4-4-4-12. */
static bool uuid_is_dash_position(size_t position)
{
    return position == 8 || position == 13 || position == 18 || position == 23;
}

static bool uuid_is_hex_digit(char character)
{
    return (character >= '0' && character <= '9') || (character >= 'a' && character <= 'f') ||
           (character >= 'A' && character <= 'F');
}

int uuid_v4_generate(char *out)
{
    static const char hex_digits[] = "0123456789abcdef";
    unsigned char bytes[UUID_BYTE_COUNT];

    if (uuid_take_random(bytes) != 0)
        return -1;
    /* RFC 4122 section 4.4: version 4 in the high nibble of byte 6, variant
     * 10xx in the high bits of byte 8. Clients parse these UUIDs with strict
     * libraries, so the bits must be right, not merely random. */
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);

    size_t position = 0;
    for (size_t index = 0; index < UUID_BYTE_COUNT; index++) {
        if (uuid_is_dash_position(position))
            out[position++] = '-';
        out[position++] = hex_digits[bytes[index] >> 4];
        out[position++] = hex_digits[bytes[index] & 0x0f];
    }
    out[position] = '\0';
    return 0;
}

bool uuid_text_is_valid(const char *text, size_t length)
{
    if (text == NULL || length != UUID_TEXT_LENGTH)
        return false;
    for (size_t position = 0; position < length; position++) {
        bool valid = uuid_is_dash_position(position) ? text[position] == '-'
                                                     : uuid_is_hex_digit(text[position]);
        if (!valid)
            return false;
    }
    return true;
}
