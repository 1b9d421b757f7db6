/*
 * whole_file.c - read a file into memory in one call (see whole_file.h).
 *
 * The size comes from seeking to the end: every caller reads regular files,
 * and a short read (the file shrank meanwhile) returns what was there.
 */
#include "whole_file.h"

#include <stdio.h>
#include <stdlib.h>

char *whole_file_read(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    char *data = NULL;
    long size;

    *length = 0;
    if (!file)
        return NULL;
    if (fseek(file, 0, SEEK_END) == 0 && (size = ftell(file)) >= 0 &&
        fseek(file, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1))) {
        *length = fread(data, 1, (size_t)size, file);
        data[*length] = '\0';
    }
    fclose(file);
    return data;
}
