#!/usr/bin/env python3
"""drop_answer.py - a TCP relay that loses one answer to POST /kbs/v0/attest.

    drop_answer.py LISTEN_PORT BROKER_PORT

Relays 127.0.0.1:LISTEN_PORT to 127.0.0.1:BROKER_PORT. The first time a
request containing "POST /kbs/v0/attest" passes, the broker's answer to it
is not forwarded and both connections are closed: the broker has taken the
nonce, the client never learns it (libcurl then sends the request again on a
new connection). Prints "dropped the attest answer" when it did.
"""
import socket
import sys
import threading

listen_port, broker_port = int(sys.argv[1]), int(sys.argv[2])
dropped = threading.Event()


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def upstream(c, u, conn):
    try:
        while (d := c.recv(65536)):
            if b"POST /kbs/v0/attest" in d and not dropped.is_set():
                conn["drop"] = True
            u.sendall(d)
    except OSError:
        pass


def downstream(u, c, conn):
    try:
        while (d := u.recv(65536)):
            if conn.get("drop") and not dropped.is_set():
                dropped.set()
                print("dropped the attest answer", flush=True)
                break
            c.sendall(d)
    except OSError:
        pass
    close(c, u)


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen_port))
srv.listen(16)
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", broker_port))
    conn = {}
    threading.Thread(target=upstream, args=(c, u, conn), daemon=True).start()
    threading.Thread(target=downstream, args=(u, c, conn), daemon=True).start()
