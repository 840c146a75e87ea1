"""pg_cut_proxy.py - a TCP proxy in front of PostgreSQL that loses one answer.

    python3 pg_cut_proxy.py LISTEN_PORT PG_PORT ARM_FILE

Forwards every connection to 127.0.0.1:PG_PORT. While ARM_FILE exists, the
first answer from the server that carries the command tag "UPDATE 1" (the
statement ran and committed) is dropped and both ends of that connection are
closed, and ARM_FILE is removed: the client sees its connection lost after
the database did the work, as when the network or the server fails between
a commit and its answer (tests/e2e/kbs_ha.sh).
"""
import os
import socket
import sys
import threading

listen_port, pg_port, arm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()


def pump(src, dst, watch):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if watch and b"UPDATE 1\x00" in data:
                with lock:
                    armed = os.path.exists(arm)
                    if armed:
                        os.unlink(arm)
                if armed:
                    break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen_port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    try:
        u = socket.create_connection(("127.0.0.1", pg_port))
    except OSError:
        c.close()
        continue
    threading.Thread(target=pump, args=(c, u, False), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, True), daemon=True).start()
