#!/usr/bin/env bash
# Instructions per ACL of one warm join-all invocation, counted by callgrind: repeatable where
# CPU time on a shared machine is not (docs/benchmark.md, "Instructions per ACL").
#
# A child that runs 1 warm invocation and one that runs 1 + RUNS are each counted whole; their
# difference over RUNS × OBJECTS is the steady per-ACL cost, with init and the warm-up (TLS
# handshakes, first-call set-up) cancelled out. The same difference, function by function and
# grouped by what the work is (signing, endpoint resolution, TLS, ...), is the breakdown printed
# after it (breakdown.py). KEEP=DIR keeps both profiles there, for callgrind_annotate.
set -euo pipefail
BIN=${BIN:-target/profiling}
OBJECTS=${OBJECTS:-100}
RUNS=${RUNS:-4}
STRATEGY=${STRATEGY:-join-all}
work=$(mktemp -d)
trap 'kill "${endpoint_PID:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

coproc endpoint { exec "$BIN/local-s3" --port 0 --tls --ca-bundle-out "$work/ca.pem" \
    --seed-bucket bench --objects "$OBJECTS"; }
while read -r line <&"${endpoint[0]}"; do
    eval "$line"
    [[ $line == *AWS_SECRET_ACCESS_KEY* ]] && break
done
export BUCKET_NAME=bench AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
    AWS_EC2_METADATA_DISABLED=true AWS_CA_BUNDLE="$work/ca.pem"

count() { # invocations after the warm-up -> total instructions (Ir)
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" \
        "$BIN/acl-bench" invoke --strategy "$STRATEGY" --start warm --runs "$1" >/dev/null 2>"$work/log.$1"
    awk '/^summary:/ { print $2 }' "$work/cg.$1"
}
one=$(count 1)
many=$(count $((1 + RUNS)))
per_invocation=$(( (many - one) / RUNS ))
echo "strategy $STRATEGY, $OBJECTS objects, warm, HTTPS to local-s3 on loopback; callgrind, $BIN"
echo "instructions: 1 invocation $one, $((1 + RUNS)) invocations $many"
echo "per warm invocation: $per_invocation; per ACL: $(( per_invocation / OBJECTS ))"
python3 "$(dirname "$0")/breakdown.py" "$work/cg.1" "$work/cg.$((1 + RUNS))" $((RUNS * OBJECTS))
if [[ -n ${KEEP:-} ]]; then
    mkdir -p "$KEEP" && cp "$work/cg.1" "$work/cg.$((1 + RUNS))" "$KEEP/"
fi
