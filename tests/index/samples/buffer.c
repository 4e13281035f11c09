/* buffer.c - a growable byte buffer.
 *
 * Copyright (C) 2026 stacklens fixture. This program is free software; you can
 * redistribute it under the terms of the GNU General Public License, version 2.
 */
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 16 /* smallest allocation */

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

/*
   Grow b so that it holds at least need bytes.
   Returns 0 on success, -1 when malloc fails (b is unchanged).
*/
static int grow(buffer *b, size_t need)
{
    size_t cap = b->cap ? b->cap : MIN_CAP;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buffer_append(buffer *b, const char *s, size_t n)
{
    if (b->len + n > b->cap && grow(b, b->len + n) < 0)
        return -1;
    memcpy(b->data + b->len, s, n); // no terminator: callers add one
    *(b->data + b->len + n - 1) = b->data[b->len + n - 1];
    b->len += n;
    return 0;
}
