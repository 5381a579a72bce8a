/* vsock_echo: both ends of the nested tests' vsock echo, built static so it runs in a busybox-only
 * initramfs (busybox has no AF_VSOCK and no Unix-socket client).
 *
 *   vsock_echo serve-unix PATH             host: listen on the Unix socket PATH, echo one connection
 *   vsock_echo serve-vsock PORT            guest: listen on vsock PORT, echo one connection
 *   vsock_echo connect-vsock CID PORT MSG  guest: connect to CID:PORT, send MSG, print the reply
 *   vsock_echo connect-unix PATH PORT MSG  host: connect to kasou's socket PATH, ask for guest PORT
 *                                          ("CONNECT PORT\n", expect "OK ..."), send MSG, print the reply
 *
 * A client prints "reply: TEXT" and exits 0 when TEXT equals MSG; any failure prints why and exits 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(char const* what)
{
    fprintf(stderr, "vsock_echo: %s: %s\n", what, strerror(errno));
    return 1;
}

static int echo_one_connection(int listener)
{
    int connection = accept(listener, NULL, NULL);
    if (connection < 0)
        return fail("accept");
    char buffer[4096];
    ssize_t got;
    while ((got = read(connection, buffer, sizeof buffer)) > 0) {
        if (write(connection, buffer, (size_t)got) != got)
            return fail("write");
    }
    if (got < 0)
        return fail("read");
    close(connection);
    return 0;
}

/* Reads one line (without its newline) into line; returns its length or -1. */
static ssize_t read_line(int fd, char* line, size_t size)
{
    size_t length = 0;
    while (length + 1 < size) {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got <= 0)
            return -1;
        if (c == '\n')
            break;
        line[length++] = c;
    }
    line[length] = '\0';
    return (ssize_t)length;
}

/* Sends message, half-closes, reads the echo until end of stream and compares. */
static int exchange(int fd, char const* message)
{
    size_t length = strlen(message);
    if (write(fd, message, length) != (ssize_t)length)
        return fail("write");
    if (shutdown(fd, SHUT_WR) != 0)
        return fail("shutdown");
    char reply[4096];
    size_t received = 0;
    ssize_t got;
    while (received + 1 < sizeof reply && (got = read(fd, reply + received, sizeof reply - 1 - received)) > 0)
        received += (size_t)got;
    reply[received] = '\0';
    printf("reply: %s\n", reply);
    return strcmp(reply, message) == 0 ? 0 : 1;
}

static int unix_socket(char const* path, struct sockaddr_un* address)
{
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof address->sun_path) {
        fprintf(stderr, "vsock_echo: the path %s is too long for a Unix socket\n", path);
        return -1;
    }
    strcpy(address->sun_path, path);
    return socket(AF_UNIX, SOCK_STREAM, 0);
}

static struct sockaddr_vm vsock_address(unsigned cid, unsigned port)
{
    struct sockaddr_vm address;
    memset(&address, 0, sizeof address);
    address.svm_family = AF_VSOCK;
    address.svm_cid = cid;
    address.svm_port = port;
    return address;
}

int main(int argc, char** argv)
{
    char const* mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "serve-unix") == 0 && argc == 3) {
        struct sockaddr_un address;
        int listener = unix_socket(argv[2], &address);
        if (listener < 0)
            return fail("socket");
        if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 || listen(listener, 1) != 0)
            return fail(argv[2]);
        return echo_one_connection(listener);
    }
    if (strcmp(mode, "serve-vsock") == 0 && argc == 3) {
        struct sockaddr_vm address = vsock_address(VMADDR_CID_ANY, (unsigned)strtoul(argv[2], NULL, 0));
        int listener = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (listener < 0)
            return fail("socket(AF_VSOCK)");
        if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 || listen(listener, 1) != 0)
            return fail("bind/listen on vsock");
        return echo_one_connection(listener);
    }
    if (strcmp(mode, "connect-vsock") == 0 && argc == 5) {
        struct sockaddr_vm address = vsock_address((unsigned)strtoul(argv[2], NULL, 0), (unsigned)strtoul(argv[3], NULL, 0));
        int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (fd < 0)
            return fail("socket(AF_VSOCK)");
        if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0)
            return fail("connect over vsock");
        return exchange(fd, argv[4]);
    }
    if (strcmp(mode, "connect-unix") == 0 && argc == 5) {
        struct sockaddr_un address;
        int fd = unix_socket(argv[2], &address);
        if (fd < 0)
            return fail("socket");
        if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0)
            return fail(argv[2]);
        char request[64];
        int length = snprintf(request, sizeof request, "CONNECT %s\n", argv[3]);
        if (write(fd, request, (size_t)length) != length)
            return fail("write CONNECT");
        char answer[128];
        if (read_line(fd, answer, sizeof answer) < 0 || strncmp(answer, "OK ", 3) != 0) {
            fprintf(stderr, "vsock_echo: kasou did not answer CONNECT with OK\n");
            return 1;
        }
        return exchange(fd, argv[4]);
    }
    fprintf(stderr, "usage: vsock_echo serve-unix PATH | serve-vsock PORT | connect-vsock CID PORT MSG | "
                    "connect-unix PATH PORT MSG\n");
    return 2;
}
