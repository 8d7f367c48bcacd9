#!/bin/sh
# What re-reading a corpus costs when its chunk cache does not fit (docs/operations.md, "The
# chunk cache"): a multi-pass LSI job on gcide's TF-IDF corpus (1.94 M non-zeros, 60 MB of
# text), given as plain text, .gz and .bz2, each with the chunk cache (the default) and
# without it (--chunk-cache-bytes 0). Prints the wall time of each job and of each pass
# (from `topicctl --json status`, polled every 0.1 s), and checks that both runs of a format
# give the same model.
#
#   cargo build --release -p topicd -p topicctl
#   bench/chunk_cache.sh [TOPICS] [POWER_ITERS]     # defaults: 20 topics, 2 power iterations (4 passes)
#
# Needs ../shared/data (or TOPICD_SHARED_DATA), python3, gzip and bzip2.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TOPICD_BIN:-$root/target/release}
data=${TOPICD_SHARED_DATA:-$root/../shared/data}
topics=${1:-20}
power_iters=${2:-2}
work=$(mktemp -d /var/tmp/topicd-cache-bench.XXXXXX)
trap 'kill $daemon 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

gzip -dc "$data/gcide_tfidf.mm.gz" >"$work/gcide_tfidf.mm"
cp "$data/gcide_tfidf.mm.gz" "$work/"
bzip2 -k "$work/gcide_tfidf.mm"
gzip -dc "$data/gcide_wordids.txt.gz" >"$work/wordids.txt"
echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus: gcide_tfidf.mm: $(stat -c %s "$work/gcide_tfidf.mm") bytes plain, $(stat -c %s "$work/gcide_tfidf.mm.gz") .gz, $(stat -c %s "$work/gcide_tfidf.mm.bz2") .bz2"
echo "job: lsi --topics $topics --power-iters $power_iters ($((power_iters + 2)) passes), default chunksize"

daemon=
run() { # FILE LIMIT
    rm -rf "$work/data"
    "$bin/topicd" --data-dir "$work/data" --control-socket "$work/sock" --chunk-cache-bytes "$2" \
        >"$work/log" 2>&1 &
    daemon=$!
    while ! [ -S "$work/sock" ]; do sleep 0.05; done
    ctl="$bin/topicctl --socket $work/sock"
    job=$($ctl submit lsi --corpus "$1" --dictionary "$work/wordids.txt" \
        --topics "$topics" --power-iters "$power_iters" --seed 1)
    python3 - "$ctl" "$job" "$1" "$2" <<'EOF'
import json, subprocess, sys, time
ctl, job, corpus, limit = sys.argv[1].split(), sys.argv[2], sys.argv[3], sys.argv[4]
start = time.monotonic()
marks, last = [], None
while True:
    s = json.loads(subprocess.run(ctl + ["--json", "status", job], capture_output=True, check=True).stdout)
    now = time.monotonic() - start
    if s["progress"]["pass"] != last:
        marks.append(now)
        last = s["progress"]["pass"]
    if s["state"] in ("succeeded", "failed", "cancelled"):
        break
    time.sleep(0.1)
marks.append(now)
passes = [round(b - a, 1) for a, b in zip(marks, marks[1:])]
reads = s.get("reads")
print(f"{corpus.rsplit('/', 1)[1]:22} chunk_cache_bytes {limit:>12}: {s['state']} in {now:6.1f} s; "
      f"passes {passes} s; last pass read {json.dumps(reads)}")
EOF
    $ctl export "$job" --format npy --out "$work/model-$(basename "$1")-$2" >/dev/null
    kill "$daemon"; wait "$daemon" || true
}

for file in gcide_tfidf.mm gcide_tfidf.mm.gz gcide_tfidf.mm.bz2; do
    for limit in 68719476736 0; do
        run "$work/$file" "$limit"
    done
    cmp -s "$work/model-$file-68719476736/u.npy" "$work/model-$file-0/u.npy" &&
        echo "$file: the same model with and without the cache" ||
        { echo "$file: THE MODELS DIFFER"; exit 1; }
done
