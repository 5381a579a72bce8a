/* Freestanding memory and string functions (see string.c). */
#pragma once

#include <stddef.h>

void *memcpy(void *dest, void const *src, size_t n);
void *memset(void *dest, int value, size_t n);
int memcmp(void const *a, void const *b, size_t n);
size_t strlen(char const *s);
