# The deployment files in deploy/ as tools read them: the Kubernetes
# manifests through `kubectl apply --dry-run=client --validate=false` (against
# k8s_discovery.py, the API server's discovery only: no cluster), the systemd
# units through `systemd-analyze verify`, the Containerfile's runtime packages
# against the libraries cai links, the broker's HAProxy recipe through
# `haproxy -c`. A tool that is absent is skipped, said so.
. "$(dirname "$0")/lib.sh"
cd "$T"
D="$ROOT/deploy"

# The objects in FILES..., one "kind/name" a line (kubectl's names).
objects() {
    awk 'FNR == 1 || /^---/ { k = ""; n = "" } /^kind:/ { k = $2 } /^  name:/ && !n { n = $2 }
         k && n && n != "-" { print tolower(k) "/" n; k = ""; n = "-" }' "$@" | sort
}

if command -v kubectl >/dev/null; then
    KP=$(free_port)
    python3 "$ROOT/tests/e2e/k8s_discovery.py" "$KP" 2>discovery.err &
    KPID=$!
    trap 'kill $KPID 2>/dev/null; rm -rf "$T"' EXIT
    wait_http "http://127.0.0.1:$KP/api" 10 || fail k8s_discovery_up "$(cat discovery.err)"
    cat > kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "http://127.0.0.1:$KP"}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
users: [{name: stub, user: {}}]
current-context: stub
EOF
    # dry_run FILE|DIR: kubectl's "kind.group/name created (dry run)" lines as kind/name.
    dry_run() {
        KUBECONFIG=kubeconfig HOME="$T" kubectl apply --dry-run=client --validate=false -f "$1" 2>&1 |
            sed -n 's#^\([a-z]*\)[a-z.0-9]*/\([a-z0-9-]*\) created (dry run)$#\1/\2#p' | sort
    }
    got=$(dry_run "$D/k8s/") want=$(objects "$D"/k8s/*.yaml)
    [ -n "$want" ] && [ "$got" = "$want" ] && pass k8s_manifests_dry_run ||
        fail k8s_manifests_dry_run "kubectl: $(KUBECONFIG=kubeconfig HOME="$T" kubectl apply --dry-run=client --validate=false -f "$D/k8s/" 2>&1 | grep -v 'created (dry run)' | head -n 5); want: $want"
    got=$(dry_run "$D/k8s/examples/") want=$(objects "$D"/k8s/examples/*.yaml)
    [ -n "$want" ] && [ "$got" = "$want" ] && pass k8s_secret_examples_dry_run ||
        fail k8s_secret_examples_dry_run "got: $got; want: $want"
    # The check refuses what a cluster would: a misspelt kind, broken YAML.
    sed 's/^kind: Deployment$/kind: Deploymnet/' "$D/k8s/kbs.yaml" > typo.yaml
    out=$(KUBECONFIG=kubeconfig HOME="$T" kubectl apply --dry-run=client --validate=false -f typo.yaml 2>&1)
    echo "$out" | grep -q 'no matches for kind "Deploymnet"' && pass k8s_check_refuses_unknown_kind ||
        fail k8s_check_refuses_unknown_kind "$out"
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: {}\n' > broken.yaml
    out=$(KUBECONFIG=kubeconfig HOME="$T" kubectl apply --dry-run=client --validate=false -f broken.yaml 2>&1) &&
        fail k8s_check_refuses_broken_yaml "accepted: $out" || pass k8s_check_refuses_broken_yaml
    # What the manifests promise (docs/DEPLOY.md).
    grep -q '^  replicas: 3$' "$D/k8s/kbs.yaml" && grep -q 'secretKeyRef: {name: cai-kbs-db' "$D/k8s/kbs.yaml" &&
        grep -q '^      runtimeClassName: kata-qemu-tdx$' "$D/k8s/serve.yaml" && pass k8s_broker_and_coco_pods ||
        fail k8s_broker_and_coco_pods "3 broker replicas, the database password from a Secret, serve pods in kata-qemu-tdx"
    # The broker's probes: ready on /health (the database answers), alive
    # on /healthz; the balancer checks /health too.
    grep -q 'readinessProbe:' "$D/k8s/kbs.yaml" && grep -A1 'readinessProbe:' "$D/k8s/kbs.yaml" | grep -q 'path: /health,' &&
        grep -A1 'livenessProbe:' "$D/k8s/kbs.yaml" | grep -q 'path: /healthz,' &&
        grep -q '^    http-check send meth GET uri /health ' "$D/haproxy/cai-kbs.cfg" && pass broker_probes_on_health ||
        fail broker_probes_on_health "kbs.yaml probes or cai-kbs.cfg's check are not /health"
else
    echo "SKIP k8s_manifests_dry_run: kubectl is not installed (./run setup installs kubernetes-client)"
fi

if command -v systemd-analyze >/dev/null; then
    # verify wants each ExecStart binary to exist: the units as installed,
    # with the binary under test in /usr/local/bin/cai's place.
    mkdir units
    for u in "$D"/systemd/*.service; do
        sed "s#/usr/local/bin/cai#$CAI#g" "$u" > "units/$(basename "$u")"
    done
    out=$(systemd-analyze verify units/*.service 2>&1); rc=$?
    [ "$rc" = 0 ] && [ -z "$out" ] && [ -f units/cai-kbs.service ] && [ -f units/cai-serve.service ] &&
        pass systemd_units_verify || fail systemd_units_verify "rc $rc: $out"
    sed 's/^Restart=/Restrat=/' units/cai-kbs.service > units/typo.service
    out=$(systemd-analyze verify units/typo.service 2>&1)
    echo "$out" | grep -q "Unknown key 'Restrat'" && pass systemd_check_refuses_unknown_key ||
        fail systemd_check_refuses_unknown_key "$out"
else
    echo "SKIP systemd_units_verify: systemd-analyze is not installed"
fi

# Each library cai links comes from a package the image installs (or libc6,
# in every Debian image). The sanitizer runtimes of the ASan build are not
# in a release binary, which is what the image builds.
if command -v dpkg >/dev/null && command -v objdump >/dev/null; then
    pkgs=$(sed -n '/^FROM debian:12-slim/,$p' "$D/Containerfile" | grep -oE 'lib[a-z0-9.+-]+' | sort -u)
    missing=""
    for so in $(objdump -p "$CAI" | awk '/NEEDED/ { print $2 }'); do
        case "$so" in libasan.so.*|libubsan.so.*) continue ;; esac
        path=$(ldd "$CAI" | awk -v s="$so" '$1 == s { print $3 }')
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ "$pkg" = libc6 ] || echo "$pkgs" | grep -qx "$pkg" || missing="$missing $so($pkg)"
    done
    [ -z "$missing" ] && [ -n "$pkgs" ] && pass containerfile_has_runtime_libraries ||
        fail containerfile_has_runtime_libraries "not installed by deploy/Containerfile:$missing"
else
    echo "SKIP containerfile_has_runtime_libraries: dpkg or objdump absent"
fi

if command -v haproxy >/dev/null; then
    ok=1
    for tls in "" "check-ssl"; do
        CAI_LB_LISTEN=127.0.0.1:1 CAI_KBS_1=127.0.0.1:2 CAI_KBS_2=127.0.0.1:3 CAI_KBS_3=127.0.0.1:4 \
            CAI_KBS_CHECK_TLS="$tls" CAI_LB_STATS=127.0.0.1:5 haproxy -c -f "$D/haproxy/cai-kbs.cfg" \
            > hc.out 2>&1 || ok=0
    done
    [ "$ok" = 1 ] && pass haproxy_kbs_recipe_valid || fail haproxy_kbs_recipe_valid "$(cat hc.out)"
else
    echo "SKIP haproxy_kbs_recipe_valid: haproxy absent (./run setup installs it)"
fi
finish
