#!/usr/bin/env python3
"""topicd on corpora of English Wikipedia's shape, at 1/100, 1/10 and full size, beside gensim.

    bench/scale.py generate [--fractions 0.01 0.1 1] [--full-compress gz|bz2]   # the corpora, once
    bench/scale.py run [--fractions 0.01 0.1] [--jobs lsi lda] [--gensim 0.01] [--full-compress gz|bz2]
    bench/scale.py plot                                  # docs/scale.png from the records
    bench/scale.py report                                # the records as a markdown table

The published figures (docs/wikipedia-scale.md): `generate --fractions 0.01 0.05 0.1 1`, then
`run --fractions 0.01 0.1 1 --gensim 0.01` and `run --fractions 0.05 --jobs lda --gensim 0.05`
(gensim's LdaModel on the 1/20 slice, extrapolated linearly on the plot).

The corpora are `topicctl generate --docs F·3,900,000 --terms 100000 --seed 1` (slices plain, the
full size as .gz, or .bz2 with --full-compress bz2), in $TOPICD_BENCH_DIR/scale/.
A slice is a corpus of its own, not a prefix: its dictionary and TF-IDF are its own.

Jobs (a fresh daemon each, timed from submit to done):
  lsi  LSI K=400 with topicd's defaults (multi-pass: power_iters 3, extra_samples 100, chunksize
       20000) on PREFIX_tfidf.mm; gensim: LsiModel(onepass=False) with the same parameters;
  lda  LDA K=100, chunksize 2000, one pass, seed 1, gensim's other defaults, on PREFIX_bow.mm;
       gensim: LdaModel with the same parameters.
Each record: wall seconds, the peak RSS of the daemon (VmHWM; gensim: of its process), the peak disk
use of the daemon's data directory (store and chunk cache, polled every 2 s), the planted-topic
recovery, the time of `topicctl export --format npy` and the rate of `topicctl infer` over the
1/100 slice (text lines, the model's load included; bench/infer.py measures infer alone).

Recovery, against PREFIX_topics.txt (each planted topic's own terms and their probabilities):
  LDA  for each planted topic, the best cosine between its own distribution and a learned topic
       (λ's rows normalised), both restricted to the terms outside the background's head (the
       first 5% of the terms, which no topic owns); `recovery` is the mean, `recovered` how many
       planted topics have a best cosine of at least 0.9;
  LSI  for each planted topic, the fraction of its TF-IDF direction (own probabilities × idf,
       normalised) that lies in the span of U: ‖Uᵀv‖; `recovery` is the mean.

Records are appended to $TOPICD_BENCH_DIR/scale.jsonl (copy them to bench/results/ to keep them).
Environment: TOPICD_BENCH_DIR (default /tmp/topicd-bench), with gensim's venv in it.
"""
import argparse, contextlib, json, os, subprocess, sys, tempfile, threading, time

from run import fresh_daemon, sh  # bench/run.py: a topicd on a throwaway data directory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.abspath(os.environ.get("TOPICD_BENCH_DIR", "/tmp/topicd-bench"))
SCALE = os.path.join(WORK, "scale")
RECORDS = os.path.join(WORK, "scale.jsonl")
PY = os.path.join(WORK, "venv", "bin", "python")
TOPICCTL = os.path.join(REPO, "target", "release", "topicctl")
FULL_DOCS, TERMS, SEED = 3_900_000, 100_000, 1
JOBS = {
    "lsi": dict(corpus="tfidf", topics=400, args=[]),
    "lda": dict(corpus="bow", topics=100, args=["--chunksize", "2000", "--seed", "1"]),
}


def prefix(fraction):
    return os.path.join(SCALE, f"f{fraction:g}")


FULL_COMPRESS = "gz"  # --full-compress: how the full size is stored


def suffix(fraction):
    # compressed at full size: 36.8 GB of text do not fit beside the build; gz by default, as
    # bz2 adds about 2,600 CPU-seconds of decoding to the first pass (docs/scaling.md, "Reading
    # compressed input"), and bz2 with --full-compress bz2 (wiki_en_tfidf.mm.bz2's format)
    return f".{FULL_COMPRESS}" if fraction == 1 else ""


def files(fraction):
    p, s = prefix(fraction), suffix(fraction)
    return dict(bow=f"{p}_bow.mm{s}", tfidf=f"{p}_tfidf.mm{s}", dictionary=f"{p}_wordids.txt{s}",
                topics=f"{p}_topics.txt")


def generate(fractions):
    os.makedirs(SCALE, exist_ok=True)
    for f in fractions:
        if all(os.path.exists(x) for x in files(f).values()):
            continue
        docs = round(FULL_DOCS * f)
        extra = ["--compress", suffix(f).lstrip(".")] if suffix(f) else []
        t0 = time.time()
        out = sh(TOPICCTL, "--json", "generate", "--docs", str(docs), "--terms", str(TERMS), "--seed", str(SEED),
                 "--out", prefix(f), *extra)
        summary = json.loads(out)
        print(f"f={f:g}: {docs} docs, {summary['bow_nnz']} non-zeros, {summary['bytes'] / 1e9:.2f} GB of text "
              f"in {time.time() - t0:.0f} s", flush=True)
        with open(prefix(f) + "_summary.json", "w") as out_file:
            json.dump(summary, out_file)


class DiskPeak:
    """The largest size a directory tree reached, polled every 2 s on a thread."""

    def __init__(self, path):
        self.path, self.peak, self.stop = path, 0, threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def size(self):
        total = 0
        for root, _, names in os.walk(self.path):
            for n in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, n)).st_blocks * 512
        return total

    def poll(self):
        while not self.stop.wait(2):
            self.peak = max(self.peak, self.size())

    def done(self):
        self.stop.set()
        self.thread.join()
        return max(self.peak, self.size())


def topicd_job(job, fraction):
    spec, fs = JOBS[job], files(fraction)
    with fresh_daemon() as (ctl, peak, tmp):
        disk = DiskPeak(os.path.join(tmp, "data"))
        t0 = time.time()
        jid = ctl("submit", job, "--corpus", fs[spec["corpus"]], "--dictionary", fs["dictionary"],
                  "--topics", str(spec["topics"]), *spec["args"]).strip()
        ctl("wait", jid)
        seconds = time.time() - t0
        rec = dict(seconds=round(seconds, 1), peak_mb=round(peak()), disk_peak_mb=round(disk.done() / 1e6))
        t0 = time.time()
        ctl("export", jid, "--format", "npy", "--out", os.path.join(tmp, "export"))
        rec["export_seconds"] = round(time.time() - t0, 2)
        rec["recovery"] = recovery(job, fraction, os.path.join(tmp, "export"))
        infer_on = files(0.01)[spec["corpus"]]
        if os.path.exists(infer_on):
            t0 = time.time()
            ctl("infer", jid, "--corpus", infer_on, "--out", os.path.join(tmp, "theta.txt"))
            rec["infer_docs_per_second"] = round(round(FULL_DOCS * 0.01) / (time.time() - t0))
        rec["peak_mb_after_infer"] = round(peak())
        return rec


GENSIM_CODE = r"""
import json, sys, time, numpy as np
from gensim.corpora import Dictionary, MmCorpus
from gensim.models import LsiModel, LdaModel
job, corpus, dictionary, topics, out = sys.argv[1:6]
dct = Dictionary.load_from_text(dictionary)
t0 = time.time()
if job == "lsi":
    m = LsiModel(MmCorpus(corpus), id2word=dct, num_topics=int(topics), chunksize=20000, onepass=False,
                 power_iters=3, extra_samples=100, random_seed=1)
    seconds = time.time() - t0
    np.save(out + "/u.npy", m.projection.u)
else:
    m = LdaModel(MmCorpus(corpus), id2word=dct, num_topics=int(topics), chunksize=2000, passes=1, random_state=1)
    seconds = time.time() - t0
    np.save(out + "/lambda.npy", m.state.get_lambda())
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(json.dumps(dict(seconds=round(seconds, 1), peak_mb=round(peak))))
"""


def gensim_job(job, fraction):
    spec, fs = JOBS[job], files(fraction)
    with tempfile.TemporaryDirectory(dir=WORK) as out:
        rec = json.loads(sh(PY, "-c", GENSIM_CODE, job, fs[spec["corpus"]], fs["dictionary"], str(spec["topics"]), out))
        rec["recovery"] = recovery(job, fraction, out)
        return rec


RECOVERY_CODE = r"""
import json, sys, numpy as np
job, topics_file, dictionary, model = sys.argv[1:5]
rows = [l.rstrip("\n").split("\t") for l in open(topics_file) if not l.startswith("#")]
first = open(topics_file).readline().split()
docs = int(first[first.index("seed") + 2])
u = np.load(model + "/u.npy") if job == "lsi" else None
lam = np.load(model + "/lambda.npy") if job == "lda" else None
terms = (u.shape[0] if u is not None else lam.shape[1])
k = max(int(r[0]) for r in rows) + 1
own = np.zeros((k, terms))
for t, term, _, p in rows:
    own[int(t), int(term)] = float(p)
if job == "lda":
    head = terms // 20
    phi = (lam / lam.sum(axis=1, keepdims=True))[:, head:]
    o = own[:, head:]
    cos = (o @ phi.T) / np.outer(np.linalg.norm(o, axis=1), np.linalg.norm(phi, axis=1))
    best = cos.max(axis=1)
    print(json.dumps(dict(recovery=round(float(best.mean()), 4), recovered=int((best >= 0.9).sum()), planted=k,
                          distinct_matches=int(len(set(cos.argmax(axis=1)))))))
else:
    df = np.zeros(terms)
    import bz2, gzip
    opener = bz2.open if dictionary.endswith(".bz2") else gzip.open if dictionary.endswith(".gz") else open
    with opener(dictionary, "rt") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 3:  # the first line is the number of documents
                df[int(fields[0])] = float(fields[2])
    idf = np.log2(docs / np.maximum(df, 1))
    v = own * idf
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    captured = np.linalg.norm(v @ u, axis=1)
    print(json.dumps(dict(recovery=round(float(captured.mean()), 4), min=round(float(captured.min()), 4), planted=k)))
"""


def recovery(job, fraction, model_dir):
    fs = files(fraction)
    return json.loads(sh(PY, "-c", RECOVERY_CODE, job, fs["topics"], fs["dictionary"], model_dir))


def machine():
    load = open("/proc/loadavg").read().split()[:3]
    return dict(cores=os.cpu_count(), load=" ".join(load), date=time.strftime("%Y-%m-%d %H:%M"))


def run(a):
    subprocess.run(["cargo", "build", "--release", "--bins", "-q"], cwd=REPO, check=True)
    for f in a.fractions:
        summary = json.load(open(prefix(f) + "_summary.json"))
        for job in a.jobs:
            systems = ["topicd"] + (["gensim"] if f in a.gensim else [])
            for system in systems:
                print(f"f={f:g} {job} {system} ...", flush=True)
                started = machine()
                rec = (topicd_job if system == "topicd" else gensim_job)(job, f)
                rec.update(system=system, job=job, fraction=f, docs=summary["documents"],
                           nnz=summary[f"{JOBS[job]['corpus']}_nnz"], terms=summary["terms"],
                           topics=JOBS[job]["topics"], compress=suffix(f).lstrip(".") or None,
                           machine=started)
                print(json.dumps(rec), flush=True)
                with open(RECORDS, "a") as out:
                    out.write(json.dumps(rec) + "\n")


def records():
    return [json.loads(l) for l in open(RECORDS)] if os.path.exists(RECORDS) else []


def report(_):
    print("| job | system | fraction | documents | non-zeros | seconds | s per 10⁷ nnz | peak MB | disk peak MB | "
          "recovery | export s | infer docs/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in records():
        rec = r["recovery"]
        got = f"{rec['recovery']}" + (f" ({rec['recovered']}/{rec['planted']} ≥ 0.9)" if "recovered" in rec else "")
        print(f"| {r['job']} K={r['topics']} | {r['system']} | {r['fraction']:g} | {r['docs']:,} | {r['nnz']:,} | "
              f"{r['seconds']} | {r['seconds'] / r['nnz'] * 1e7:.2f} | {r['peak_mb']} | {r.get('disk_peak_mb', '-')} | "
              f"{got} | {r.get('export_seconds', '-')} | {r.get('infer_docs_per_second', '-')} |")


def plot(a):
    code = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
recs = [json.loads(l) for l in open(sys.argv[1])]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
for ax, job, title in zip(axes, ["lsi", "lda"], ["LSI K=400 (multi-pass)", "LDA K=100 (chunksize 2000, 1 pass)"]):
    for system, style in [("topicd", "o-"), ("gensim", "s--")]:
        pts = {}
        for r in recs:
            if r["job"] == job and r["system"] == system:
                pts[r["nnz"]] = r["seconds"]  # the last record of a size counts
        if pts:
            xs = sorted(pts)
            ax.loglog(xs, [pts[x] for x in xs], style, label=system)
            top = max(r["nnz"] for r in recs if r["job"] == job)
            if system == "gensim" and xs[-1] < top:  # its largest slice, scaled linearly
                ax.loglog([xs[-1], top], [pts[xs[-1]], pts[xs[-1]] * top / xs[-1]], ":", color="C1",
                          label="gensim, extrapolated linearly")
    xs = sorted({r["nnz"] for r in recs if r["job"] == job and r["system"] == "topicd"})
    if xs:
        base = [r["seconds"] for r in recs if r["job"] == job and r["system"] == "topicd" and r["nnz"] == xs[0]][-1]
        ax.loglog(xs, [base * x / xs[0] for x in xs], ":", color="gray", label="linear in non-zeros")
    ax.set_title(title)
    ax.set_xlabel("non-zeros of the corpus")
    ax.set_ylabel("wall seconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
fig.suptitle("topicd and gensim on corpora of English Wikipedia's shape (bench/scale.py)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
"""
    if subprocess.run([PY, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        sys.exit(f"matplotlib is missing: {PY} -m pip install matplotlib")
    sh(PY, "-c", code, a.records or RECORDS, a.out)
    print(a.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1])
    r = sub.add_parser("run")
    r.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    for cmd in (g, r):
        cmd.add_argument("--full-compress", choices=["gz", "bz2"], default="gz",
                         help="the full size's compression (slices are plain text)")
    r.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    r.add_argument("--gensim", type=float, nargs="*", default=[0.01], help="fractions gensim also runs on")
    p = sub.add_parser("plot")
    p.add_argument("--records", help=f"default {RECORDS}")
    p.add_argument("--out", default=os.path.join(REPO, "docs", "scale.png"))
    sub.add_parser("report")
    a = ap.parse_args()
    global FULL_COMPRESS
    FULL_COMPRESS = getattr(a, "full_compress", FULL_COMPRESS)
    if a.cmd in ("run", "plot") and not os.path.exists(PY):
        sys.exit(f"no gensim venv in {WORK}: run ../shared/bench/gensim/setup.sh first")
    dict(generate=lambda a: generate(a.fractions), run=run, plot=plot, report=report)[a.cmd](a)


if __name__ == "__main__":
    main()
