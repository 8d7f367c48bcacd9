#!/usr/bin/env python3
"""`topicctl prepare` against gensim's pipeline, in one run on one machine.

    bench/prepare.py [--repeats 1] [--skip-build]

Extracts the GCIDE dictionary text (apt-get install dict-gcide; one article per document,
its newlines turned into spaces: the same documents as ../shared/bench/gensim/make_gcide.py)
into $TOPICD_BENCH_DIR/prepare/gcide.txt, then times, on that file and with the same
parameters (make_gcide.py's: --deacc --min-len 3 --max-len 20, gensim's STOPWORDS, no_below 5,
no_above 0.5, keep_n 100000):
  gensim   client/tests/gensim_prepare.py: simple_preprocess, Dictionary, filter_extremes,
           save_as_text, doc2bow, MmCorpus.serialize, TfidfModel, MmCorpus.serialize
           (the venv's python: $TOPICD_BENCH_DIR/venv/bin/python);
  topicctl `topicctl prepare` (release build, every core).
The outputs must be byte-identical. Prints both times and the ratio as a markdown table;
--out FILE writes it there too.
"""
import argparse, gzip, os, platform, subprocess, sys, time, filecmp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.abspath(os.environ.get("TOPICD_BENCH_DIR", "/tmp/topicd-bench"))
PY = os.environ.get("TOPICD_GENSIM_PYTHON", os.path.join(WORK, "venv", "bin", "python"))
GD = os.environ.get("GCIDE_DIR", "/usr/share/dictd")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def dec(s):
    v = 0
    for ch in s:
        v = v * 64 + B64.index(ch)
    return v


def extract(out):
    """make_gcide.py's documents, one per line (bytes kept as they are)."""
    dz = os.path.join(GD, "gcide.dict.dz")
    if not os.path.exists(dz):
        sys.exit("apt-get install dict-gcide first")
    data = gzip.open(dz).read()
    seen, n = set(), 0
    with open(out + ".tmp", "wb") as f:
        for line in open(os.path.join(GD, "gcide.index"), encoding="utf-8", errors="replace"):
            w, o, l = line.rstrip("\n").split("\t")
            if w.startswith("00-database"):
                continue
            k = (dec(o), dec(l))
            if k in seen:
                continue
            seen.add(k)
            f.write(data[k[0]:k[0] + k[1]].replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
            n += 1
    os.replace(out + ".tmp", out)
    return n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--out")
    a = p.parse_args()
    d = os.path.join(WORK, "prepare")
    os.makedirs(d, exist_ok=True)
    text = os.path.join(d, "gcide.txt")
    if not os.path.exists(text):
        print("documents:", extract(text), file=sys.stderr)
    stop = os.path.join(d, "stopwords.txt")
    subprocess.run([PY, "-c", "from gensim.parsing.preprocessing import STOPWORDS\n"
                    f"open({stop!r}, 'w').write(''.join(w + chr(10) for w in sorted(STOPWORDS)))"], check=True)
    if not a.skip_build:
        subprocess.run(["cargo", "build", "--release", "-p", "topicctl"], cwd=REPO, check=True)
    topicctl = os.path.join(REPO, "target", "release", "topicctl")
    opts = ["--deacc", "--min-len", "3", "--max-len", "20", "--stopwords", stop,
            "--no-below", "5", "--no-above", "0.5", "--keep-n", "100000"]
    rows = []
    for r in range(a.repeats):
        t0 = time.time()
        subprocess.run([PY, os.path.join(REPO, "client", "tests", "gensim_prepare.py"), text,
                        os.path.join(d, "gensim")] + opts, check=True, stdout=subprocess.DEVNULL)
        g = time.time() - t0
        t0 = time.time()
        subprocess.run([topicctl, "prepare", "--text", text, "--out", os.path.join(d, "topicctl")] + opts,
                       check=True, stdout=subprocess.DEVNULL)
        t = time.time() - t0
        same = all(filecmp.cmp(os.path.join(d, "gensim" + s), os.path.join(d, "topicctl" + s), shallow=False)
                   for s in ("_wordids.txt", "_bow.mm", "_tfidf.mm"))
        rows.append((g, t, same))
    size = os.path.getsize(text)
    with open(os.path.join(d, "gensim_wordids.txt")) as f:
        terms = sum(1 for _ in f) - 1
    lines = [
        f"GCIDE: {size / 1e6:.1f} MB of text, {sum(1 for _ in open(text, 'rb'))} documents, {terms} terms kept.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| run | gensim (s) | topicctl prepare (s) | speed-up | outputs identical |",
        "|---|---|---|---|---|",
    ] + [f"| {i + 1} | {g:.1f} | {t:.2f} | {g / t:.1f}x | {'yes' if s else 'NO'} |" for i, (g, t, s) in enumerate(rows)]
    report = "\n".join(lines)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")
    if not all(s for _, _, s in rows):
        sys.exit("outputs differ")


if __name__ == "__main__":
    main()
