#!/usr/bin/env bash
# Profile-guided release build of consentry: the release profile, plus LLVM's
# branch-weight, inlining and code-layout decisions taken from counts of a training
# run instead of guessed. Rust code only; the bundled C (SQLite, aws-lc) is built as
# usual.
#
# Usage: benches/pgo_build.sh                 (from anywhere in the repository)
# Needs: the release build's tools, plus `rustup component add llvm-tools` (the
#   llvm-profdata that matches rustc's LLVM), python3, and for the proxy's training
#   what benches/proxy_compare.sh needs (nginx, oha, openssl, curl).
# Env: PGO_DIR (default target/pgo) holds the instrumented build, the raw counts, the
#   merged profile and the final build; TRAIN_MB (default 60) the size of the
#   training capture; PORT_BASE (default 29400) for the proxy's training run.
# Output: $PGO_DIR/release/consentry (the last line printed is its path) and
#   $PGO_DIR/release/hudsucker_noop, the proxy benchmark's baseline trained and built
#   the same way, so that the two can also be compared PGO against PGO.
#
# Training (about 2 minutes between the two builds, which take a clean release build's
# time each): every capture under captures/ and the demo HAR through `analyze`; a
# capture from benches/gen_pcap.py with a seed of its own (so the profile never sees
# the benchmark's file) through `analyze` with one thread and with the default; and
# HTTP and HTTPS, keep-alive and new-connection, small and 1 MiB responses through
# `consentry proxy` and the no-op hudsucker (benches/proxy_compare.sh). Code that
# training does not reach is optimised for size as cold: keep the training covering
# every hot path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PGO_DIR=${PGO_DIR:-target/pgo}
mkdir -p "$PGO_DIR"
PGO_DIR=$(cd "$PGO_DIR" && pwd) # absolute: RUSTFLAGS and the training use it elsewhere
TRAIN_MB=${TRAIN_MB:-60}
PORT_BASE=${PORT_BASE:-29400}

die() { echo "pgo_build.sh: $*" >&2; exit 2; }
step() { echo "pgo_build.sh: $*" >&2; }

HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA="$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata"
[ -x "$PROFDATA" ] || die "needs rustc's llvm-profdata: rustup component add llvm-tools"
command -v python3 >/dev/null || die "needs python3"

RAW="$PGO_DIR/raw"
rm -rf "$RAW"
mkdir -p "$RAW"

step "1/4 instrumented build (target dir $PGO_DIR/gen)"
RUSTFLAGS="-Cprofile-generate=$RAW" \
    cargo build --release --bin consentry --example hudsucker_noop --target-dir "$PGO_DIR/gen"
GEN="$PGO_DIR/gen/release/consentry"

step "2/4 training"
WORK="$PGO_DIR/train"
rm -rf "$WORK"
mkdir -p "$WORK"
analyze() { "$GEN" analyze --format jsonl "$@" >/dev/null; }
analyze --case captures/demo/consentry.toml captures/demo/demo.har
analyze --case captures/gateway/consentry.toml captures/gateway/gateway.pcapng
analyze --case captures/gateway/consentry.toml captures/gateway/gateway.pcap
analyze --case captures/tls/consentry.toml --keylog captures/tls/tls.keylog captures/tls/tls.pcap
analyze --case captures/tls/consentry.toml captures/tls/tls-dsb.pcapng
analyze --case captures/tls/consentry.toml --keylog captures/tls/openssl.keylog captures/tls/openssl.pcap
analyze --case captures/tls/consentry.toml captures/tls/plain.pcap
analyze --case captures/quic/consentry.toml captures/quic/quic.pcap
python3 benches/gen_pcap.py --size-mb "$TRAIN_MB" --seed 7 --out "$WORK/train.pcap" \
    --case-out "$WORK/train.toml" >&2
analyze --case "$WORK/train.toml" -j 1 "$WORK/train.pcap"
analyze --case "$WORK/train.toml" "$WORK/train.pcap"
rm -f "$WORK/train.pcap"
CONSENTRY="$GEN" NOOP="$PGO_DIR/gen/release/examples/hudsucker_noop" \
    PROXIES="hudsucker consentry" SCHEMES="http https" SIZES="small 1m" CONNS=50 \
    MODES="ka new" DURATION=5 SPECIAL=0 RATES="" MITM_RATES="" PORT_BASE="$PORT_BASE" \
    benches/proxy_compare.sh >"$WORK/proxy.txt" ||
    die "the proxy's training run failed (see above; it needs nginx, oha, openssl, curl)"
for proxy in hudsucker consentry; do
    grep "^| $proxy |" "$WORK/proxy.txt" | grep -qv 'n/a' ||
        die "the proxy's training run measured nothing for $proxy: $WORK/proxy.txt"
done
ls "$RAW"/*.profraw >/dev/null 2>&1 || die "training wrote no counts into $RAW"

step "3/4 merging $(find "$RAW" -name "*.profraw" | wc -l) count files"
"$PROFDATA" merge -o "$PGO_DIR/consentry.profdata" "$RAW"

step "4/4 optimised build (target dir $PGO_DIR/use)"
RUSTFLAGS="-Cprofile-use=$PGO_DIR/consentry.profdata" \
    cargo build --release --bin consentry --example hudsucker_noop --target-dir "$PGO_DIR/use"
mkdir -p "$PGO_DIR/release"
cp "$PGO_DIR/use/release/examples/hudsucker_noop" "$PGO_DIR/release/hudsucker_noop"
cp "$PGO_DIR/use/release/consentry" "$PGO_DIR/release/consentry"
echo "$PGO_DIR/release/consentry"
