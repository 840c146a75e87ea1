#!/usr/bin/env bash
# bench/onednn.sh - cai's quantized matmul against oneDNN for prefill's matrix
# products (issue 3): Qwen2.5-7B shapes, 64 tokens, 2 threads each.
#
#   bench/onednn.sh
#
# Installs Debian's libdnnl-dev (oneDNN 2.x) if missing, builds bench/onednn.c
# against build/libcai.a into a temporary directory and runs it. Debian's
# oneDNN uses OpenMP (libgomp), so its threads are set with OMP_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e /usr/include/oneapi/dnnl/dnnl.h ]; then
    if ! apt-get install -y libdnnl-dev >/dev/null 2>&1; then
        apt-get update >/dev/null && apt-get install -y libdnnl-dev >/dev/null
    fi
fi
[ -f build/libcai.a ] || make -j2 build/libcai.a >/dev/null
d=$(mktemp -d /tmp/cai-bench-onednn.XXXXXX)
trap 'rm -rf "$d"' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Isrc bench/onednn.c build/libcai.a -o "$d/onednn" -ldnnl \
    -levent_openssl -levent_pthreads -levent -lcurl -lssl -lcrypto -ljansson -lsqlite3 -lpthread -lm
case "$(ldd "$d/onednn")" in
*libgomp*) ;;
*) echo "note: oneDNN is not linked to libgomp here; OMP_NUM_THREADS may not apply" >&2 ;;
esac
echo "load average before the run (shared machine): $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=2 "$d/onednn"
