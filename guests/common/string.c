/* The few libc memory functions the compiler may call even in freestanding code. */
#include "string.h"

void *memcpy(void *dest, void const *src, size_t n)
{
    unsigned char *d = dest;
    unsigned char const *s = src;
    while (n--)
        *d++ = *s++;
    return dest;
}

void *memset(void *dest, int value, size_t n)
{
    unsigned char *d = dest;
    while (n--)
        *d++ = (unsigned char)value;
    return dest;
}

int memcmp(void const *a, void const *b, size_t n)
{
    unsigned char const *x = a;
    unsigned char const *y = b;
    for (; n; --n, ++x, ++y) {
        if (*x != *y)
            return *x < *y ? -1 : 1;
    }
    return 0;
}

size_t strlen(char const *s)
{
    size_t n = 0;
    while (s[n])
        ++n;
    return n;
}
