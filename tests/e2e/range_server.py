#!/usr/bin/env python3
"""range_server.py - serve one file over HTTP with Range requests, like a model
store does, and cut the first answer off after DROP bytes (a flaky network).

    range_server.py FILE PORTFILE [DROP]

Writes the port it listens on to PORTFILE and logs each request to stderr."""
import http.server
import os
import re
import sys

path, portfile = sys.argv[1], sys.argv[2]
drop = int(sys.argv[3]) if len(sys.argv) > 3 else 0
data = open(path, "rb").read()
state = {"requests": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        state["requests"] += 1
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if m:
            start = int(m.group(1))
        if start > len(data):
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if m else 200)
        if m:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state["requests"] == 1 and drop:
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.connection.shutdown(2)  # cut off mid-body
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("range_server: %s Range=%s\n" % (fmt % args, self.headers.get("Range")))


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
