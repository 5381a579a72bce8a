#!/usr/bin/env python3
"""Hostile NBD clients that try to hold kasou's server hostage, and the checks on what the server
does about them. Speaks the protocol byte by byte (see storage_nbd_raw_client.py).

    storage_nbd_flood_client.py SOCKET read-flood CONNECTIONS READS
        CONNECTIONS connections each pipeline READS reads of 32 MiB and never read a reply;
        prints "ready" once everything is sent, then holds the connections until stdin closes.
    storage_nbd_flood_client.py SOCKET handshake-flood CONNECTIONS SECONDS
        CONNECTIONS connections that never finish the handshake; prints "ready", then expects
        every one the server accepted to be closed by it within SECONDS (exit 1 otherwise).
    storage_nbd_flood_client.py SOCKET large-writes COUNT
        pipelines COUNT writes of 32 MiB, reads every reply, prints "done", then keeps the
        connection open until stdin closes (a well-behaved bulk client).
    storage_nbd_flood_client.py SOCKET idle SECONDS
        an idle connection is closed after SECONDS (not before); one that keeps sending
        requests is not.
"""
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storage_nbd_raw_client import (CMD_READ, CMD_WRITE, connect,  # noqa: E402
                                    expect_successful_replies, fail, go,
                                    read_simple_reply, recv_exact, request)

LARGE = 32 * 1024 * 1024


def closed_within(sock, seconds):
    """True if the server closes `sock` within `seconds` (data it sends first is dropped)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return False
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True


def read_flood(path, connections, reads, name):
    socks = []
    for _ in range(connections):
        sock = connect(path)
        go(sock, name)
        socks.append(sock)
    # Requests are small: they all fit in the socket buffers although no reply is ever read.
    for i in range(reads):
        for sock in socks:
            request(sock, CMD_READ, i, 0, LARGE)
    print("ready", flush=True)
    sys.stdin.read()


def handshake_flood(path, connections, seconds, _name):
    socks = []
    start = time.monotonic()
    for _ in range(connections):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        socks.append(sock)
    print("ready", flush=True)
    # Those beyond the server's connection limit are closed at once, the others at the timeout.
    deadline = start + seconds
    open_ones = list(socks)
    while open_ones:
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"{len(open_ones)} of {connections} connections still open {seconds} s after connecting")
        ready, _, _ = select.select(open_ones, [], [], left)
        for sock in ready:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                open_ones.remove(sock)
                sock.close()
    print(f"all closed after {time.monotonic() - start:.1f} s")


def large_writes(path, count, name):
    sock = connect(path)
    go(sock, name)
    payload = b"\x5a" * LARGE
    for i in range(count):
        request(sock, CMD_WRITE, 100 + i, LARGE, LARGE, payload)  # the second half of the disk
    expect_successful_replies(sock, range(100, 100 + count))
    print("done", flush=True)
    sys.stdin.read()  # the connection stays open while the server's memory is measured
    sock.close()


def idle(path, seconds, name):
    quiet = connect(path)
    go(quiet, name)
    busy = connect(path)
    go(busy, name)
    request(quiet, CMD_READ, 1, 0, 4096)
    if read_simple_reply(quiet) != (0, 1):
        fail("read on the quiet connection failed")
    recv_exact(quiet, 4096)
    start = time.monotonic()
    # The busy connection sends a request every seconds / 4 for twice the timeout.
    cookie = 10
    while time.monotonic() - start < 2 * seconds:
        request(busy, CMD_READ, cookie, 0, 4096)
        if read_simple_reply(busy) != (0, cookie):
            fail(f"the busy connection was cut after {time.monotonic() - start:.1f} s")
        recv_exact(busy, 4096)
        cookie += 1
        time.sleep(seconds / 4)
    if not closed_within(quiet, 2):
        fail(f"the idle connection is still open {time.monotonic() - start:.1f} s after its last request")
    elapsed = time.monotonic() - start
    print(f"idle connection closed; busy one served {cookie - 10} requests over {elapsed:.1f} s")
    busy.close()


def idle_not_before(path, seconds, name):
    sock = connect(path)
    go(sock, name)
    if closed_within(sock, seconds * 0.8):
        fail(f"the idle connection was closed before {seconds} s")
    if not closed_within(sock, seconds * 0.2 + 2):
        fail(f"the idle connection is still open after {seconds} s")


def main():
    path, mode = sys.argv[1], sys.argv[2]
    name = os.environ.get("EXPORT", "disk.img").encode()
    if mode == "read-flood":
        read_flood(path, int(sys.argv[3]), int(sys.argv[4]), name)
    elif mode == "handshake-flood":
        handshake_flood(path, int(sys.argv[3]), float(sys.argv[4]), name)
    elif mode == "large-writes":
        large_writes(path, int(sys.argv[3]), name)
    elif mode == "idle":
        idle(path, float(sys.argv[3]), name)
    elif mode == "idle-not-before":
        idle_not_before(path, float(sys.argv[3]), name)
    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
