# Every command and subcommand answers --help and -h with its own usage on
# stdout and exit 0, whatever else is on the line, and acts on nothing (no
# file appears in the current directory); a missing option value or an
# unknown option is one clear usage error (exit 2), never two messages.
. "$(dirname "$0")/lib.sh"
mkdir "$T/cwd" && cd "$T/cwd"

# Command line | what the first line of stdout must start with | words the
# help must contain (a command's help names all its subcommands). -h is
# tried too, in place of each --help.
HELP_TABLE='
--help|usage: cai <command>|seal unseal inspect attest kbs agent model serve proxy receipt run chat bench
help|usage: cai <command>|seal unseal inspect attest kbs agent model serve proxy receipt run chat bench
help seal|usage: cai seal|
seal --help|usage: cai seal|--key-file --kbs --type --keep
seal in -o out.sealed --key-file k --help|usage: cai seal|
unseal --help|usage: cai unseal|--force
unseal in.sealed -k k -o out --help|usage: cai unseal|
inspect --help|usage: cai inspect|--json
attest --help|usage: cai attest|sim-init quote inspect verify
attest sim-init --help|usage: cai attest sim-init|root_ca.pem
attest quote --help|usage: cai attest quote|--report-data
attest quote --tee sim --sim dir -o q.bin --help|usage: cai attest quote|
attest inspect --help|usage: cai attest inspect|--json
attest inspect q.bin --help|usage: cai attest inspect|
attest verify --help|usage: cai attest verify|--collateral --pccs
attest verify q.bin --collateral c.json --help|usage: cai attest verify|
kbs --help|usage: cai kbs|--db --master-key admin
kbs --db x.db --master-key m.key --help|usage: cai kbs|
kbs admin --help|usage: cai kbs admin|keygen token put delete list policy audit
kbs admin keygen --help|usage: cai kbs admin keygen|
kbs admin keygen -o admin --help|usage: cai kbs admin keygen|
kbs admin token --help|usage: cai kbs admin token|
kbs admin put --help|usage: cai kbs admin|put
kbs admin put a/b/c file --help|usage: cai kbs admin|put
kbs admin delete --help|usage: cai kbs admin|delete
kbs admin list --help|usage: cai kbs admin|list
kbs admin policy --help|usage: cai kbs admin|policy
kbs admin audit --help|usage: cai kbs admin|audit
agent --help|usage: cai agent|get-resource
agent get-resource --help|usage: cai agent get-resource|--kbs
agent get-resource kbs:///a/b/c --kbs http://127.0.0.1:1 --help|usage: cai agent get-resource|
model --help|usage: cai model|synth import inspect tokenize
model synth --help|usage: cai model synth|--arch
model import --help|usage: cai model import|--type --threads
model import dir -o m.gguf --help|usage: cai model import|
model synth -o m.gguf --help|usage: cai model synth|
model inspect --help|usage: cai model inspect|
model tokenize --help|usage: cai model tokenize|--special
serve --help|usage: cai serve|--alias --max-tokens-default --model-id
serve -m m.gguf --port 0 --help|usage: cai serve|
serve -m m.gguf --tls attested --help|usage: cai serve|--tls
proxy --help|usage: cai proxy|--policy
proxy --policy p.json --trust-sim dir --help|usage: cai proxy|
receipt --help|usage: cai receipt verify|--request
receipt verify --help|usage: cai receipt verify|--response
receipt verify r.json --trust-sim dir --help|usage: cai receipt verify|
serve -m m.gguf --receipts --help|usage: cai serve|--receipts
run --help|usage: cai run|--prompt
run -m m.gguf -p hi --help|usage: cai run|
chat --help|usage: cai chat|--url
chat --url http://127.0.0.1:1 --help|usage: cai chat|
bench --help|usage: cai bench|seal attest kbs ratls -m
bench seal --help|usage: cai bench seal|--size
bench seal --size 1M --help|usage: cai bench seal|
bench attest --help|usage: cai bench attest|--seconds
bench kbs --help|usage: cai bench kbs|--clients
bench ratls --help|usage: cai bench ratls|--url
bench ratls --url https://127.0.0.1:1 --help|usage: cai bench ratls|
bench -m x --help|usage: cai bench -m|--mmap
bench -m x.gguf -p 8 --help|usage: cai bench -m|
'
# created: what the last command left in the current directory (then removed).
created() {
    local c
    c=$(ls -A | tr '\n' ' ')
    rm -rf ./* ./.[!.]* 2>/dev/null
    echo "$c"
}
n=0
while IFS='|' read -r line want words; do
    [ -z "$line" ] && continue
    for h in --help -h; do
        [ "$h" = -h ] && [ "${line%% *}" = help ] && continue
        args=$(echo "$line" | sed "s/--help/$h/")
        [ "$args" = "$line" ] && [ "$h" = -h ] && continue
        n=$((n + 1))
        # shellcheck disable=SC2086 # the table's words are the arguments
        out=$(timeout 20 "$CAI" $args 2>"$T/err.txt" < /dev/null)
        rc=$?
        made=$(created)
        name="help_$(echo "$args" | tr -c 'a-zA-Z0-9\n' _)"
        missing=""
        for w in $words; do echo "$out" | grep -qF -- "$w" || missing="$missing $w"; done
        if [ "$rc" != 0 ]; then
            fail "$name" "exit $rc: $(head -c 300 "$T/err.txt")"
        elif [ "$(echo "$out" | head -n 1 | cut -c1-${#want})" != "$want" ]; then
            fail "$name" "first line '$(echo "$out" | head -n 1)', want '$want...'"
        elif [ -n "$missing" ]; then
            fail "$name" "the help does not mention:$missing"
        elif [ -s "$T/err.txt" ]; then
            fail "$name" "stderr: $(head -c 300 "$T/err.txt")"
        elif [ -n "$made" ]; then
            fail "$name" "created $made"
        else
            pass "$name"
        fi
    done
done <<< "$HELP_TABLE"
[ "$n" -ge 90 ] && pass help_table_size || fail help_table_size "only $n command lines"

# Usage errors: exit 2, stderr names the problem once (pattern), then the
# pointer to --help; nothing on stdout, no file.
ERROR_TABLE='
chat --url|option .--url. needs a value
run -m|option .-m. needs a value
serve --port|option .--port. needs a value
serve --frobnicate|unknown option .--frobnicate.
serve -Z|unknown option .-Z.
seal in -o|option .-o. needs a value
unseal in.sealed --key-file|option .--key-file. needs a value
inspect x.sealed --bogus|unknown option .--bogus.
attest sim-init|needs a directory
attest sim-init --bogus dir|unknown option .--bogus.
attest quote --tee|option .--tee. needs a value
attest inspect --bogus|unknown option .--bogus.
attest verify q.bin --collateral|option .--collateral. needs a value
attest frobnicate|expected: sim-init, quote, inspect or verify
kbs --db|option .--db. needs a value
kbs admin --url|option .--url. needs a value
kbs admin audit --limit|option .--limit. needs a value
kbs admin frobnicate|unknown admin command
agent get-resource kbs:///a/b/c --kbs|option .--kbs. needs a value
agent get-resource --bogus|unknown option .--bogus.
model synth --arch|option .--arch. needs a value
model inspect|needs a GGUF file or a model folder
model import dir -o m.gguf --type|option .--type. needs a value
model import dir|needs one model folder and -o
model import dir -o m.gguf --type q3_k|unknown type
model tokenize --bogus m.gguf|unknown option .--bogus.
bench seal --size|option .--size. needs a value
bench attest --seconds|option .--seconds. needs a value
bench kbs --kbs|option .--kbs. needs a value
bench ratls --url|option .--url. needs a value
bench ratls --bogus|unknown option .--bogus.
proxy --policy|option .--policy. needs a value
proxy --bogus|unknown option .--bogus.
receipt verify r.json --policy|option .--policy. needs a value
receipt verify --bogus r.json|unknown option .--bogus.
serve --tls|option .--tls. needs a value
bench -m|option .-m. needs a value
bench -m x.gguf --bogus|unknown option .--bogus.
'
while IFS='|' read -r line want; do
    [ -z "$line" ] && continue
    # shellcheck disable=SC2086
    out=$(timeout 20 "$CAI" $line 2>"$T/err.txt" < /dev/null)
    rc=$?
    name="usage_error_$(echo "$line" | tr -c 'a-zA-Z0-9\n' _)"
    lines=$(wc -l < "$T/err.txt")
    made=$(created)
    if [ "$rc" = 2 ] && [ -z "$out" ] && [ "$lines" = 2 ] && head -n 1 "$T/err.txt" | grep -qE "^cai [a-z -]+: .*$want" &&
        tail -n 1 "$T/err.txt" | grep -q "^Try 'cai .*--help'\.$" && [ -z "$made" ]; then
        pass "$name"
    else
        fail "$name" "exit $rc, stdout '$out', created '$made', stderr: $(cat "$T/err.txt")"
    fi
done <<< "$ERROR_TABLE"
finish
