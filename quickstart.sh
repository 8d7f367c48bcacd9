#!/usr/bin/env bash
# Build topicd, start a daemon on a throwaway data directory, train LSI on the corpus bundled
# in examples/ (8 planted topics, 3000 documents), and print its topics.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo build --release --bins
dir=$(mktemp -d)
target/release/topicd --data-dir "$dir/data" --control-socket "$dir/control.sock" 2>"$dir/topicd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
ctl() { target/release/topicctl --socket "$dir/control.sock" "$@"; }
for _ in $(seq 100); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done
job=$(ctl submit lsi --corpus examples/planted_tfidf.mm.gz --dictionary examples/planted_wordids.txt --topics 8)
ctl watch "$job"
ctl topics "$job" --num-topics 8 --words 8
