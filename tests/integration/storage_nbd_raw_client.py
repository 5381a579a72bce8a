#!/usr/bin/env python3
"""A raw-socket NBD client for kasou's integration tests: speaks the protocol byte by byte, so it
can misbehave on purpose (hostile input) or pipeline requests around a SIGTERM.

    storage_nbd_raw_client.py SOCKET hostile CASE        one misbehaving connection; exit 0 if the
                                                          server reacted as the protocol requires
    storage_nbd_raw_client.py SOCKET read-only            writes to a read-only export get EPERM
    storage_nbd_raw_client.py SOCKET inflight N PIDFILE  pipeline N writes, SIGTERM the server,
                                                          expect N successful replies
"""
import os
import signal
import socket
import struct
import sys

NBD_MAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
OPT_GO = 7
OPT_LIST = 3
REP_ACK = 1
REP_ERR_UNSUP = (1 << 31) + 1
CMD_READ, CMD_WRITE = 0, 1
EPERM, EINVAL, ENOSPC = 1, 22, 28


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            fail(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def expect_closed(sock):
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
    except ConnectionResetError:
        return
    except socket.timeout:
        fail("the server kept a hostile connection open")


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    magic, opt, flags = struct.unpack(">QQH", recv_exact(sock, 18))
    if magic != NBD_MAGIC or opt != IHAVEOPT or not flags & 1:
        fail("bad greeting")
    return sock


def send_option(sock, option, data=b""):
    sock.sendall(struct.pack(">QII", IHAVEOPT, option, len(data)) + data)


def read_option_reply(sock):
    magic, option, reply, length = struct.unpack(">QIII", recv_exact(sock, 20))
    if magic != REPLY_MAGIC:
        fail("bad option reply magic")
    return option, reply, recv_exact(sock, length)


def go(sock, name):
    """Negotiates export `name` with simple replies; returns its size."""
    sock.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    send_option(sock, OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    size = None
    while True:
        _, reply, data = read_option_reply(sock)
        if reply == 3 and struct.unpack(">H", data[:2])[0] == 0:
            size = struct.unpack(">Q", data[2:10])[0]
        elif reply == REP_ACK:
            return size
        else:
            fail(f"unexpected reply {reply:#x} to NBD_OPT_GO")


def request(sock, command, cookie, offset, length, payload=b"", flags=0, magic=REQUEST_MAGIC):
    sock.sendall(struct.pack(">IHHQQI", magic, flags, command, cookie, offset, length) + payload)


def read_simple_reply(sock):
    magic, error, cookie = struct.unpack(">IIQ", recv_exact(sock, 16))
    if magic != SIMPLE_REPLY_MAGIC:
        fail(f"bad simple reply magic {magic:#x}")
    return error, cookie


def expect_successful_replies(sock, cookies):
    """Reads one simple reply per cookie, in any order; each must report success."""
    seen = set()
    for _ in range(len(cookies)):
        error, cookie = read_simple_reply(sock)
        if error != 0:
            fail(f"request {cookie} failed with {error}")
        seen.add(cookie)
    if seen != set(cookies):
        fail("replies do not match the requests")


def hostile(path, case, name):
    sock = connect(path)
    if case == "bad-client-flags":
        sock.sendall(struct.pack(">I", 0xFFFFFFFF))
        return expect_closed(sock)
    if case == "bad-option-magic":
        sock.sendall(struct.pack(">I", 3) + struct.pack(">QII", 0x1234, OPT_LIST, 0))
        return expect_closed(sock)
    if case == "huge-option":
        sock.sendall(struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, OPT_GO, 0xFFFFFFF0))
        return expect_closed(sock)
    if case == "unknown-option":
        # The protocol's answer is NBD_REP_ERR_UNSUP; the connection then goes on.
        sock.sendall(struct.pack(">I", 3))
        send_option(sock, 0x7777, b"xyz")
        _, reply, _ = read_option_reply(sock)
        if reply != REP_ERR_UNSUP:
            fail(f"unknown option answered with {reply:#x}")
        send_option(sock, OPT_LIST)
        while read_option_reply(sock)[1] != REP_ACK:
            pass
        return
    size = go(sock, name)
    if case == "bad-request-magic":
        request(sock, CMD_READ, 1, 0, 4096, magic=0xDEADBEEF)
        return expect_closed(sock)
    if case == "unknown-command":
        request(sock, 0x4242, 1, 0, 4096)
        return expect_closed(sock)
    if case == "oversized-write":
        request(sock, CMD_WRITE, 1, 0, 0xFFFFFFFF)
        return expect_closed(sock)
    if case == "out-of-range":
        # Well framed but outside the export: error replies, and the connection stays usable.
        request(sock, CMD_READ, 1, size, 4096)
        if read_simple_reply(sock) != (EINVAL, 1):
            fail("read past the end not refused with EINVAL")
        request(sock, CMD_READ, 2, 0xFFFFFFFFFFFFF000, 0x2000)  # offset + length overflows
        if read_simple_reply(sock) != (EINVAL, 2):
            fail("overflowing read not refused with EINVAL")
        request(sock, CMD_WRITE, 3, size - 512, 1024, b"\xee" * 1024)
        if read_simple_reply(sock) != (ENOSPC, 3):
            fail("write past the end not refused with ENOSPC")
        request(sock, CMD_READ, 4, size - 512, 512)
        if read_simple_reply(sock) != (0, 4):
            fail("valid read after refused requests failed")
        if recv_exact(sock, 512) == b"\xee" * 512:
            fail("a refused write reached the disk")
        return
    if case == "truncated-write":
        request(sock, CMD_WRITE, 1, 0, 65536)
        sock.sendall(b"\x00" * 100)
        sock.shutdown(socket.SHUT_WR)
        return expect_closed(sock)
    fail(f"unknown case {case}")


def read_only(path, name):
    sock = connect(path)
    sock.sendall(struct.pack(">I", 3))
    send_option(sock, OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    flags = None
    while True:
        _, reply, data = read_option_reply(sock)
        if reply == 3 and struct.unpack(">H", data[:2])[0] == 0:
            flags = struct.unpack(">H", data[10:12])[0]
        elif reply == REP_ACK:
            break
    if not flags & 2:
        fail("NBD_FLAG_READ_ONLY not set")
    request(sock, CMD_WRITE, 7, 0, 4096, b"\x01" * 4096)
    if read_simple_reply(sock) != (EPERM, 7):
        fail("write to a read-only export not refused with EPERM")
    request(sock, 4, 8, 0, 4096)  # NBD_CMD_TRIM
    if read_simple_reply(sock) != (EPERM, 8):
        fail("trim on a read-only export not refused with EPERM")


def inflight(path, count, pidfile, name):
    sock = connect(path)
    go(sock, name)
    block = 256 * 1024
    for i in range(count):
        request(sock, CMD_WRITE, 1000 + i, i * block, block, bytes([i % 251 + 1]) * block)
    with open(pidfile) as f:
        os.kill(int(f.read().strip()), signal.SIGTERM)
    expect_successful_replies(sock, range(1000, 1000 + count))
    expect_closed(sock)


def main():
    path, mode = sys.argv[1], sys.argv[2]
    name = os.environ.get("EXPORT", "disk.img").encode()
    if mode == "hostile":
        hostile(path, sys.argv[3], name)
    elif mode == "read-only":
        read_only(path, name)
    elif mode == "inflight":
        inflight(path, int(sys.argv[3]), sys.argv[4], name)
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
