#include "console.h"

#include "arch.h"
#include "spinlock.h"

#define UART_LSR 5
#define UART_LSR_THR_EMPTY 0x20

static struct spinlock console_lock;

static void uart_putc(char c)
{
    while (!(inb(COM1_PORT + UART_LSR) & UART_LSR_THR_EMPTY))
        cpu_relax();
    outb(COM1_PORT, (uint8_t)c);
}

static void uart_write(char const *s, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        uart_putc(s[i]);
}

struct sink {
    char *buffer;
    size_t size;
    size_t length;
};

static void sink_put(struct sink *sink, char c)
{
    if (sink->length + 1 < sink->size)
        sink->buffer[sink->length++] = c;
}

static void sink_number(struct sink *sink, uint64_t value, unsigned base, unsigned width, char pad)
{
    char digits[24];
    unsigned n = 0;
    do {
        unsigned digit = (unsigned)(value % base);
        digits[n++] = (char)(digit < 10 ? '0' + digit : 'a' + digit - 10);
        value /= base;
    } while (value);
    for (; width > n; --width)
        sink_put(sink, pad);
    while (n)
        sink_put(sink, digits[--n]);
}

size_t format_line(char *buffer, size_t size, char const *format, va_list args)
{
    struct sink sink = {buffer, size, 0};
    for (char const *p = format; *p; ++p) {
        if (*p != '%') {
            sink_put(&sink, *p);
            continue;
        }
        ++p;
        char pad = ' ';
        if (*p == '0') {
            pad = '0';
            ++p;
        }
        unsigned width = 0;
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (unsigned)(*p++ - '0');
        bool is_long = false;
        if (*p == 'l') {
            is_long = true;
            ++p;
        }
        switch (*p) {
        case 's': {
            char const *s = va_arg(args, char const *);
            while (*s)
                sink_put(&sink, *s++);
            break;
        }
        case 'c':
            sink_put(&sink, (char)va_arg(args, int));
            break;
        case 'd': {
            int64_t value = is_long ? va_arg(args, int64_t) : va_arg(args, int);
            if (value < 0) {
                sink_put(&sink, '-');
                value = -value;
            }
            sink_number(&sink, (uint64_t)value, 10, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t value = is_long ? va_arg(args, uint64_t) : va_arg(args, unsigned);
            sink_number(&sink, value, *p == 'u' ? 10 : 16, width, pad);
            break;
        }
        case '%':
            sink_put(&sink, '%');
            break;
        default:
            goto done; /* an unknown conversion ends the line: no guessing at arguments */
        }
    }
done:
    if (sink.size)
        sink.buffer[sink.length] = '\0';
    return sink.length;
}

void console_printf(char const *format, ...)
{
    char line[CONSOLE_LINE_MAX];
    va_list args;
    va_start(args, format);
    size_t length = format_line(line, sizeof line, format, args);
    va_end(args);
    spin_lock(&console_lock);
    uart_write(line, length);
    spin_unlock(&console_lock);
}

void console_emergency_printf(char const *format, ...)
{
    char line[CONSOLE_LINE_MAX];
    va_list args;
    va_start(args, format);
    size_t length = format_line(line, sizeof line, format, args);
    va_end(args);
    uart_write(line, length);
}
