"""A stand-in for the Confidential Containers guest components' REST API
(guest-components api-server-rest, 127.0.0.1:8006 in a CoCo pod), for
tests/e2e/coco.sh. It answers what the real one answers, the way it does
(docs/ATTESTATION.md, "CoCo guest components"), with the simulated TEE
behind it instead of a TD:

  GET /aa/evidence?runtime_data=X[&encoding=base64]
      X is URL-safe base64 without padding with encoding=base64, else the
      query value's UTF-8 bytes; more than 64 bytes is a 500 (the TDX
      attester's refusal), fewer are zero-padded to 64. The quote comes from
      `cai attest quote --tee sim --sim DIR --report-data HEX`; the answer
      is {"cc_eventlog": null, "quote": STANDARD-BASE64}.
  GET /cdh/resource/REPO/TYPE/TAG
      `cai agent get-resource kbs:///REPO/TYPE/TAG --kbs URL --tee sim`
      against a real cai kbs: 200 with its bytes, or 500 with the error text
      (as the real API answers any failure of the data hub).

Faults for the refusal rows: --evidence malformed (JSON cut short),
--evidence other-reportdata (a quote over other REPORTDATA), --cdh off (the
resource feature off: 404, as upstream).

usage: coco_api.py --port-file F --cai BIN --sim DIR [--kbs URL]
                   [--evidence ok|malformed|other-reportdata] [--cdh on|off]
"""
import argparse
import base64
import binascii
import http.server
import os
import subprocess
import sys
import tempfile
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cai", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--kbs")
    ap.add_argument("--evidence", default="ok", choices=["ok", "malformed", "other-reportdata"])
    ap.add_argument("--cdh", default="on", choices=["on", "off"])
    args = ap.parse_args()

    def run(cmd):
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body, ctype="application/octet-stream"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def evidence(self, query):
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            if "runtime_data" not in params:
                return self.answer(400, b"BAD REQUEST")
            rd = params["runtime_data"]
            enc = params.get("encoding")
            if enc is None:
                data = rd.encode()
            elif enc == "base64":
                if "=" in rd or "+" in rd or "/" in rd:
                    return self.answer(400, b"BAD REQUEST")
                try:
                    data = base64.urlsafe_b64decode(rd + "=" * (-len(rd) % 4))
                except (binascii.Error, ValueError):
                    return self.answer(400, b"BAD REQUEST")
            else:
                return self.answer(400, b"BAD REQUEST")
            if len(data) > 64:
                return self.answer(500, b"TDX Attester: Report data must be no more than 64 bytes")
            data = data + bytes(64 - len(data))
            if args.evidence == "other-reportdata":
                data = bytes([data[0] ^ 1]) + data[1:]
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "quote")
                r = run([args.cai, "attest", "quote", "--tee", "sim", "--sim", args.sim,
                         "--report-data", data.hex(), "-o", out])
                if r.returncode != 0:
                    return self.answer(500, r.stderr)
                with open(out, "rb") as f:
                    quote = f.read()
            doc = b'{"cc_eventlog":null,"quote":"' + base64.b64encode(quote) + b'"}'
            if args.evidence == "malformed":
                doc = doc[: len(doc) // 2]
            self.answer(200, doc)

        def resource(self, path):
            if args.cdh == "off":
                return self.answer(404, b"Resource Feature Not Enabled", "text/plain")
            r = run([args.cai, "agent", "get-resource", "kbs:///" + path, "--kbs", args.kbs,
                     "--tee", "sim", "--sim-dir", args.sim, "--attempts", "1"])
            if r.returncode != 0:
                return self.answer(500, b"get resource failed: " + r.stderr.strip().replace(b"\n", b" "))
            self.answer(200, r.stdout)

        def do_GET(self):
            if not self.client_address[0].startswith("127."):
                return self.answer(403, b"Forbidden")
            u = urllib.parse.urlsplit(self.path)
            if u.path == "/aa/evidence":
                return self.evidence(u.query)
            if u.path.startswith("/cdh/resource/"):
                return self.resource(u.path[len("/cdh/resource/"):])
            self.answer(404, b"URL NOT FOUND")

        def log_message(self, fmt, *a):
            sys.stderr.write("coco_api: " + (fmt % a) + "\n")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
