/*
 * whole_file.h - read a file into memory in one call.
 *
 * Shared by the client's own tests (captured frames of shared/vectors) and
 * the integration harness (the same vectors, the logs of the processes it
 * starts), so that none of them carries its own fopen/ftell/fread loop.
 */
#ifndef RELAY_TEST_WHOLE_FILE_H
#define RELAY_TEST_WHOLE_FILE_H

#include <stddef.h>

/* The file's contents, malloc'd and NUL-ended (so text can be used as a
 * string), with their length in *length; NULL (*length 0) when the file
 * cannot be opened or memory runs out. */
char *whole_file_read(const char *path, size_t *length);

#endif
