"""k8s_discovery.py - the API discovery of a Kubernetes API server, and
nothing else, for `kubectl apply --dry-run=client` without a cluster
(tests/e2e/deploy.sh).

    python3 k8s_discovery.py PORT

kubectl maps each manifest's apiVersion and kind to a resource through the
server's discovery documents, then asks for the object (404 here: it would
be created). The resources listed are Kubernetes' own names and scopes for
the kinds deploy/k8s uses; an apiVersion or kind not listed is refused by
kubectl as it would be by a cluster.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# group/version -> [(resource, kind, namespaced)]
RESOURCES = {
    "v1": [("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True),
           ("secrets", "Secret", True), ("services", "Service", True)],
    "apps/v1": [("deployments", "Deployment", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "node.k8s.io/v1": [("runtimeclasses", "RuntimeClass", False)],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource_list(gv):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": [{"name": r, "singularName": k.lower(), "namespaced": ns, "kind": k,
                           "verbs": VERBS} for r, k, ns in RESOURCES[gv]]}


def group_list():
    groups = {}
    for gv in RESOURCES:
        if "/" in gv:
            g, v = gv.split("/")
            groups.setdefault(g, []).append({"groupVersion": gv, "version": v})
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{"name": g, "versions": vs, "preferredVersion": vs[0]}
                       for g, vs in groups.items()]}


class Handler(BaseHTTPRequestHandler):
    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        p = self.path.split("?")[0].rstrip("/")
        if p == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if p == "/apis":
            return self.send(200, group_list())
        if p == "/api/v1":
            return self.send(200, resource_list("v1"))
        if p.startswith("/apis/") and p[6:] in RESOURCES:
            return self.send(200, resource_list(p[6:]))
        return self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "code": 404, "message": "not found"})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
