# cai kbs: request paths whose percent-decoding would change their meaning
# are refused by httpd with 400 in the broker's error shape (issue 15,
# item 5): an encoded NUL (PUT .../x%00y was stored at .../x), an encoded
# '/', bytes that are not UTF-8 (a 500 with body {} before), a control
# character. Nothing is stored; ordinary paths still work.
. "$(dirname "$0")/lib.sh"
cd "$T"

"$CAI" attest sim-init sim >/dev/null
"$CAI" kbs admin keygen -o admin >/dev/null
KPORT=$(free_port)
K=http://127.0.0.1:$KPORT
"$CAI" kbs --db kbs.db --master-key master.key --port "$KPORT" --admin-pub admin.pub \
    --trust-sim sim --rate 0 --insecure-http > kbs.log 2>&1 &
KBS=$!
trap 'kill -9 $KBS 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 100); do
    curl -s -o /dev/null "$K/kbs/v0/x" && break
    sleep 0.1
done
TOK=$("$CAI" kbs admin token --key admin.key)
head -c 32 /dev/urandom > key.bin

# put NAME PATH-AS-SENT: the admin PUT of key.bin; sets CODE, body in resp.json.
put() {
    CODE=$(curl -s --path-as-is -o resp.json -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $TOK" --data-binary @key.bin "$K/kbs/v0/resource/$1")
}
# refused NAME PATH WHY: 400, the error shape, the reason named.
refused() {
    put "$2"
    if [ "$CODE" = 400 ] && python3 - "$3" resp.json <<'EOF'; then pass "$1"; else fail "$1" "$CODE $(cat resp.json)"; fi
import json, sys
e = json.load(open(sys.argv[2]))
assert e["type"].endswith("/RequestRefused"), e
assert sys.argv[1] in e["detail"], e
EOF
}

refused path_encoded_nul_refused 'pub/x/key%00evil' 'encoded NUL'
refused path_encoded_slash_refused 'pub/x%2fy/key' "encoded '/'"
refused path_encoded_slash_upper_refused 'pub/x%2Fy/key' "encoded '/'"
refused path_invalid_utf8_refused 'pub/x/%ff' 'UTF-8'
refused path_overlong_slash_refused 'pub/x%c0%afy/key' 'UTF-8'
refused path_control_char_refused 'pub/x/a%0ab' 'control character'
# a GET too, before any authentication (the PUT above was a 500 with body {})
code=$(curl -s -o resp.json -w '%{http_code}' "$K/kbs/v0/resource/pub/%ff/key")
[ "$code" = 400 ] && grep -q 'UTF-8' resp.json && pass path_invalid_utf8_get_400 ||
    fail path_invalid_utf8_get_400 "$code $(cat resp.json)"

# control: an ordinary path is stored; none of the refused ones is
put 'pub/ok/key'
[ "$CODE" = 200 ] && pass path_ordinary_put || fail path_ordinary_put "$CODE $(cat resp.json)"
"$CAI" kbs admin --url "$K" --key admin.key list > list.json
python3 - list.json <<'EOF' && pass path_refusals_store_nothing || fail path_refusals_store_nothing "$(cat list.json)"
import json, sys
doc = json.load(open(sys.argv[1]))
paths = sorted(r if isinstance(r, str) else r.get("path") for r in (doc if isinstance(doc, list) else doc.get("resources", [])))
assert paths == ["pub/ok/key"], paths
EOF
kill -TERM $KBS; wait $KBS
! grep -qE 'Sanitizer|runtime error' kbs.log && pass kbs_clean || fail kbs_clean "$(grep -A5 -E 'Sanitizer|runtime error' kbs.log | head)"
finish
