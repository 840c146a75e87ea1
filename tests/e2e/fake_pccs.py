#!/usr/bin/env python3
"""A fake PCCS for tests: serves a `cai attest sim-init` directory's collateral
in the Intel PCS/PCCS v4 wire format (JSON bodies, URL-encoded PEM issuer chains
in response headers, DER PCK CRL, hex root CA CRL as a PCCS sends it).

    fake_pccs.py SIM_DIR PORT_FILE COUNT_FILE

Binds 127.0.0.1 on an ephemeral port, writes the port to PORT_FILE and, after
each request, the number of requests served to COUNT_FILE."""
import http.server
import os
import sys
import threading
import urllib.parse

sim, port_file, count_file = sys.argv[1:4]
lock = threading.Lock()
served = 0


def read(name, mode="rb"):
    with open(os.path.join(sim, name), mode) as f:
        return f.read()


def chain(leaf):
    return urllib.parse.quote(read(leaf, "r") + read("root_ca.pem", "r"), safe="")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        headers, body, status = {}, b"", 200
        if url.path == "/tdx/certification/v4/tcb":
            if q.get("fmspc", [""])[0].upper() != "005A51000000":
                status = 404
            else:
                headers["TCB-Info-Issuer-Chain"] = chain("tcb_signing.pem")
                body = read("tcb_info.json")
        elif url.path == "/tdx/certification/v4/qe/identity":
            headers["SGX-Enclave-Identity-Issuer-Chain"] = chain("tcb_signing.pem")
            body = read("qe_identity.json")
        elif url.path == "/sgx/certification/v4/pckcrl" and q.get("ca") == ["platform"]:
            headers["SGX-PCK-CRL-Issuer-Chain"] = chain("pck_platform_ca.pem")
            body = read("pck_crl.der")
        elif url.path == "/sgx/certification/v4/rootcacrl":
            body = read("root_ca_crl.der").hex().encode()
        else:
            status = 404
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with lock:
            served += 1
            with open(count_file + ".tmp", "w") as f:
                f.write(str(served))
            os.replace(count_file + ".tmp", count_file)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(port_file + ".tmp", port_file)
srv.serve_forever()
