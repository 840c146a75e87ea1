# cai seal / inspect / unseal from the command line, as a user runs them.
. "$(dirname "$0")/lib.sh"
cd "$T"

check help_top "$CAI" --help
for c in seal unseal inspect bench; do check "help_$c" "$CAI" "$c" --help; done
"$CAI" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && pass unknown_command_exit_2 || fail unknown_command_exit_2 "wrong exit code"
"$CAI" seal >/dev/null 2>&1; [ $? -eq 2 ] && pass seal_usage_exit_2 || fail seal_usage_exit_2 "wrong exit code"

: > empty.bin
check new_key "$CAI" seal empty.bin -o empty.sealed --key-file k --new-key
[ "$(stat -c %a k)" = 600 ] && [ "$(stat -c %s k)" = 32 ] && pass key_file_mode_0600 || fail key_file_mode_0600 "$(stat -c '%a %s' k)"
refuses new_key_refuses_existing "already exists" "$CAI" seal empty.bin -o x.sealed --key-file k --new-key
# An existing output is refused before any work (its key would be orphaned),
# replaced with --force; a symbolic link is never written through.
echo old > taken.sealed
refuses seal_refuses_existing_output "taken.sealed already exists; give --force" "$CAI" seal empty.bin -o taken.sealed -k k
[ "$(cat taken.sealed)" = old ] && pass existing_output_untouched || fail existing_output_untouched "$(head -c 40 taken.sealed)"
check seal_force_replaces sh -c "'$CAI' seal empty.bin -o taken.sealed -k k --force >/dev/null && '$CAI' inspect taken.sealed >/dev/null"
ln -s taken.sealed link.sealed
refuses seal_refuses_symlink_output "symbolic link" "$CAI" seal empty.bin -o link.sealed -k k --force

# Round trips at the chunk edges (4 MiB default chunks, and 64 KiB ones).
C=$((4 * 1024 * 1024))
for n in 0 1 $((C - 1)) $C $((C + 1)) $((3 * C + 12345)); do
    head -c "$n" /dev/urandom > "in.$n"
    if "$CAI" seal "in.$n" -o "s.$n" -k k >/dev/null && "$CAI" unseal "s.$n" -k k -o "out.$n" >/dev/null &&
        cmp -s "in.$n" "out.$n" &&
        [ "$("$CAI" inspect --json "s.$n" | grep '"digest"' | cut -d'"' -f4)" = "$(sha "in.$n")" ]; then
        pass "round_trip_$n"
    else
        fail "round_trip_$n" "mismatch"
    fi
done
check round_trip_small_chunks sh -c "'$CAI' seal in.$((3 * C + 12345)) -o small.sealed -k k --chunk-size 64K -t 1 >/dev/null &&
    '$CAI' unseal small.sealed -k k -o small.out -t 2 >/dev/null && cmp in.$((3 * C + 12345)) small.out &&
    '$CAI' inspect small.sealed | grep -q 'chunks.*x 64 KiB'"

# The digest printed by seal is sha256sum's.
head -c 100000 /dev/urandom > model.gguf
out=$("$CAI" seal model.gguf -o model.sealed -k k --key-id kbs:///cai/qwen/key)
echo "$out" | grep -q "sha256:$(sha model.gguf)" && pass seal_prints_digest || fail seal_prints_digest "$out"
"$CAI" inspect model.sealed | grep -q 'kbs:///cai/qwen/key' && pass inspect_shows_key_id || fail inspect_shows_key_id "no key id"
"$CAI" inspect model.sealed --key-file k | grep -q 'authenticated *yes' && pass inspect_with_key || fail inspect_with_key "not authenticated"
# The default key id of a hidden file: Trustee refuses a resource path
# segment that starts with '.', so the leading dot is dropped; a key id with
# one is refused (common/respath.h).
cp model.gguf .hidden.gguf
"$CAI" seal .hidden.gguf -o hidden.sealed -k k >/dev/null &&
    "$CAI" inspect hidden.sealed | grep -q 'kbs:///cai/hidden/key' && pass default_key_id_hidden_file ||
    fail default_key_id_hidden_file "$("$CAI" inspect hidden.sealed 2>&1 | grep -i key)"
err=$("$CAI" seal model.gguf -o dot.sealed -k k --key-id kbs:///cai/.x/key 2>&1 >/dev/null)
[ $? -eq 2 ] && echo "$err" | grep -q 'is not a kbs://' && [ ! -e dot.sealed ] &&
    pass key_id_leading_dot_refused || fail key_id_leading_dot_refused "$err"

# A directory (a Hugging Face style model folder).
mkdir -p hf/tokenizer && echo '{"model_type":"qwen2"}' > hf/config.json &&
    head -c 300000 /dev/urandom > hf/model.safetensors && : > hf/empty && echo tok > hf/tokenizer/vocab.txt
check dir_seal "$CAI" seal hf -o hf.sealed -k k
"$CAI" inspect hf.sealed | grep -q 'directory, 4 files' && pass dir_inspect || fail dir_inspect "$("$CAI" inspect hf.sealed)"
check dir_unseal_equal sh -c "'$CAI' unseal hf.sealed -k k -o hf2 >/dev/null && diff -r hf hf2"
refuses dir_unseal_refuses_existing "already exists" "$CAI" unseal hf.sealed -k k -o hf2
ln -s hf2 hf-link
refuses dir_unseal_refuses_symlink "symbolic link" "$CAI" unseal hf.sealed -k k -o hf-link --force

# An existing OUT: refused unless --force, which replaces a regular file in
# one step; a symbolic link is never written through (or replaced), dangling
# or not; a directory is never replaced.
echo precious > victim && cp victim victim.orig
echo old > existing
refuses unseal_refuses_existing "existing already exists; give --force" "$CAI" unseal model.sealed -k k -o existing
[ "$(cat existing)" = old ] && pass unseal_existing_untouched || fail unseal_existing_untouched "$(head -c 100 existing)"
ln -s victim link
refuses unseal_refuses_symlink "symbolic link" "$CAI" unseal model.sealed -k k -o link
refuses unseal_force_refuses_symlink "symbolic link" "$CAI" unseal model.sealed -k k -o link --force
cmp -s victim victim.orig && [ -L link ] && [ "$(readlink link)" = victim ] &&
    pass unseal_symlink_target_untouched || fail unseal_symlink_target_untouched "$(ls -l link victim)"
ln -s not-there dangling
refuses unseal_refuses_dangling_symlink "symbolic link" "$CAI" unseal model.sealed -k k -o dangling
[ ! -e not-there ] && pass unseal_dangling_not_created || fail unseal_dangling_not_created "not-there created"
mkdir adir
refuses unseal_force_refuses_dir "not a regular file" "$CAI" unseal model.sealed -k k -o adir --force
ln existing hardlink
check unseal_force_replaces "$CAI" unseal model.sealed -k k -o existing --force
cmp -s existing model.gguf && [ "$(cat hardlink)" = old ] && [ "$(stat -c %a existing)" = 600 ] &&
    pass unseal_force_atomic || fail unseal_force_atomic "not a new file: $(stat -c '%a %h' existing)"
[ -z "$(ls -A | grep -E '^\.(existing|link|dangling)')" ] && pass unseal_no_temporaries || fail unseal_no_temporaries "$(ls -A)"

# Tampering: refused, with a clear message, and nothing written.
cp model.sealed t.sealed && flip_byte t.sealed 40
refuses tamper_header "modified|authentication" "$CAI" unseal t.sealed -k k -o t.out
[ ! -e t.out ] && pass tamper_header_no_output || fail tamper_header_no_output "t.out exists"
cp model.sealed t.sealed && flip_byte t.sealed 50000
refuses tamper_chunk "chunk 0 of 1 failed authentication" "$CAI" unseal t.sealed -k k -o t.out
[ -z "$(ls -A | grep -E '^(t\.out|\.t\.out)')" ] && pass tamper_chunk_no_output || fail tamper_chunk_no_output "$(ls -A)"
head -c 60000 model.sealed > trunc.sealed
refuses truncated "truncated" "$CAI" unseal trunc.sealed -k k -o t.out
cp model.sealed app.sealed && printf x >> app.sealed
refuses appended "after its end" "$CAI" unseal app.sealed -k k -o t.out
head -c 32 /dev/urandom > k2 && chmod 600 k2
refuses wrong_key "wrong key" "$CAI" unseal model.sealed -k k2 -o t.out
refuses inspect_wrong_key "wrong key" "$CAI" inspect model.sealed -k k2
refuses not_sealed "not a sealed file" "$CAI" inspect model.gguf
chmod 644 k2
refuses key_file_permissions "other users" "$CAI" unseal model.sealed -k k2 -o t.out
[ ! -e t.out ] && pass no_output_after_refusals || fail no_output_after_refusals "t.out exists"
finish
