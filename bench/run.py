#!/usr/bin/env python3
"""topicd against gensim, in one run on one machine.

    bench/run.py lsi [--corpora gcide news] [--topics 100] [--skip-gensim] [--memory]
    bench/run.py lda [--corpora gcide news] [--topics 100] [--skip-gensim]

LDA: gensim's serial LdaModel and LdaMulticore(workers=2) against a topicd job with the same
parameters (chunksize 2000, passes 1, gensim's defaults otherwise) on <name>_bow_train.mm;
quality is the per-word bound on <name>_bow_heldout.mm (gensim's log_perplexity, topicctl eval).

For each corpus it runs, in this order and on the same input files:
  gensim   LsiModel serial one-pass (chunksize 10000) and serial multi-pass, through the harness in
           ../shared/bench/gensim (its venv must exist: ../shared/bench/gensim/setup.sh);
  topicd   a fresh daemon per job: the default job (multi-pass) and a one-pass job with gensim's
           one-pass parameters (chunksize 10000, power_iters 2), timed from submit to done.
Quality is the relative error of the K singular values against the exact ones (<name>_svds_k<K>.txt);
memory is the daemon's peak RSS (VmHWM). `--memory` also trains on gcide repeated 10 times (1.2M
documents) to show that the daemon's memory does not grow with the corpus.
Speed is reported as a ratio measured in this run; the machine's GEMM rate (numpy, 1 thread) is printed
beside it. Results: a markdown table on stdout and in $TOPICD_BENCH_DIR/topicd_lsi.md.
Environment: GENSIM_BENCH (default ../shared/bench/gensim), TOPICD_BENCH_DATA, TOPICD_BENCH_DIR
(default /tmp/topicd-bench).
"""
import argparse, contextlib, json, os, shutil, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENSIM = os.path.abspath(os.environ.get("GENSIM_BENCH", os.path.join(REPO, "..", "shared", "bench", "gensim")))
WORK = os.path.abspath(os.environ.get("TOPICD_BENCH_DIR", "/tmp/topicd-bench"))
DATA = os.path.abspath(os.environ.get("TOPICD_BENCH_DATA", os.path.join(GENSIM, "..", "..", "data")))
PY = os.path.join(WORK, "venv", "bin", "python")
TOPICD = os.path.join(REPO, "target", "release", "topicd")
TOPICCTL = os.path.join(REPO, "target", "release", "topicctl")
ENV = dict(os.environ, TOPICD_BENCH_DIR=WORK, TOPICD_BENCH_DATA=DATA, OPENBLAS_NUM_THREADS="1")


def sh(*cmd, **kw):
    """Runs a command and returns its stdout; a failure raises with the command and its stderr."""
    done = subprocess.run(cmd, text=True, capture_output=True, env=ENV, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))[:200]} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def exact(corpus, k):
    return [float(x) for x in open(os.path.join(DATA, f"{corpus}_svds_k{k}.txt")).read().split()][:k]


def errors(s, ex):
    k = min(len(s), len(ex))
    rel = [abs(a - b) / b for a, b in zip(s[:k], ex[:k])]
    return dict(relerr_mean=sum(rel) / k, relerr_max=max(rel), energy_ratio=sum(x * x for x in s[:k]) / sum(x * x for x in ex[:k]))


def gensim_lsi(corpus, k, chunksize, onepass):
    sh(PY, os.path.join(GENSIM, "benchdata.py"), "lsi", corpus, str(k))  # unpack before the clock
    results = os.path.join(WORK, "results.jsonl")
    before = os.path.getsize(results) if os.path.exists(results) else 0
    subprocess.run([PY, os.path.join(GENSIM, "bench_harness.py"), "--timeout", "900", "--", "--mode", "lsi",
                    "--corpus", corpus, "--topics", str(k), "--chunksize", str(chunksize), "--onepass", str(int(onepass))],
                   env=ENV, check=False, cwd=GENSIM)
    with open(results) as f:
        f.seek(before)
        rec = json.loads(f.read().strip().splitlines()[-1])
    q = rec.get("quality", {})
    return dict(seconds=rec.get("train_seconds"), peak_mb=rec.get("client_peak_rss_mb"), status=rec["status"],
                relerr_mean=q.get("relerr_mean"), relerr_max=q.get("relerr_max"), energy_ratio=q.get("energy_ratio"))


@contextlib.contextmanager
def fresh_daemon():
    """A topicd on a throwaway data directory; yields (ctl, peak_mb, tmp): ctl(*args) runs topicctl against
    it, peak_mb() reads the daemon's peak RSS."""
    tmp = tempfile.mkdtemp(prefix="topicd-bench-", dir=WORK)
    sock = os.path.join(tmp, "control.sock")
    daemon = subprocess.Popen([TOPICD, "--data-dir", os.path.join(tmp, "data"), "--control-socket", sock],
                              stderr=open(os.path.join(tmp, "topicd.log"), "w"), env=ENV)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        ctl = lambda *a: sh(TOPICCTL, "--socket", sock, *a)
        peak = lambda: round(int([l for l in open(f"/proc/{daemon.pid}/status") if l.startswith("VmHWM")][0].split()[1]) / 1024, 1)
        yield ctl, peak, tmp
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def topicd_lsi(corpus_file, dictionary, k, extra, ex):
    """One job on a fresh daemon: wall time from submit to done, errors, daemon peak RSS."""
    with fresh_daemon() as (ctl, peak, tmp):
        t0 = time.time()
        job = ctl("submit", "lsi", "--corpus", corpus_file, "--dictionary", dictionary, "--topics", str(k), *extra).strip()
        ctl("wait", job)
        seconds = time.time() - t0
        peak_mb = peak()
        ctl("export", job, "--format", "json", "--out", os.path.join(tmp, "export"))
        s = json.load(open(os.path.join(tmp, "export", "model.json")))["singular_values"]
        return dict(seconds=round(seconds, 2), peak_mb=peak_mb, status="ok", **(errors(s, ex) if ex else {}))


def gensim_lda(corpus, k, chunksize, mode):
    sh(PY, os.path.join(GENSIM, "benchdata.py"), "lda", corpus)
    results = os.path.join(WORK, "results.jsonl")
    before = os.path.getsize(results) if os.path.exists(results) else 0
    extra = ["--workers", "2"] if mode == "ldamc" else []
    subprocess.run([PY, os.path.join(GENSIM, "bench_harness.py"), "--timeout", "900", "--", "--mode", mode,
                    "--corpus", corpus, "--topics", str(k), "--chunksize", str(chunksize), *extra],
                   env=ENV, check=False, cwd=GENSIM)
    with open(results) as f:
        f.seek(before)
        rec = json.loads(f.read().strip().splitlines()[-1])
    q = rec.get("quality", {})
    return dict(seconds=rec.get("train_seconds"), peak_mb=rec.get("client_peak_rss_mb"), status=rec["status"],
                bound=q.get("heldout_per_word_bound"))


def topicd_lda(train, heldout, dictionary, k, chunksize):
    """One LDA job on a fresh daemon: wall time from submit to done, held-out bound, peak RSS."""
    with fresh_daemon() as (ctl, peak, _):
        t0 = time.time()
        job = ctl("submit", "lda", "--corpus", train, "--dictionary", dictionary, "--topics", str(k),
                  "--chunksize", str(chunksize), "--seed", "1",
                  # *_bow_train.mm was serialised without id2word: its header stops at the
                  # largest id it uses, the dictionary goes on
                  "--unused-terms").strip()
        ctl("wait", job)
        seconds = time.time() - t0
        peak_mb = peak()
        bound = json.loads(ctl("--json", "eval", job, "--corpus", heldout))["per_word_bound"]
        return dict(seconds=round(seconds, 2), peak_mb=peak_mb, status="ok", bound=bound)


def lda_report(a):
    k, rows = a.topics, []
    for corpus in a.corpora:
        chunksize = 2000
        if a.skip_gensim:
            train, heldout = (os.path.join(DATA, f"{corpus}_bow_{p}.mm.gz") for p in ("train", "heldout"))
        else:
            sh(PY, os.path.join(GENSIM, "benchdata.py"), "lda", corpus)
            train, heldout = (os.path.join(WORK, "corpora", f"{corpus}_bow_{p}.mm") for p in ("train", "heldout"))
            rows.append(("gensim LdaModel (serial)", corpus, gensim_lda(corpus, k, chunksize, "lda")))
            rows.append(("gensim LdaMulticore(workers=2)", corpus, gensim_lda(corpus, k, chunksize, "ldamc")))
        dictionary = os.path.join(DATA, f"{corpus}_wordids.txt.gz")
        rows.append(("topicd lda", corpus, topicd_lda(train, heldout, dictionary, k, chunksize)))
    lines = [f"LDA, K={k}, chunksize 2000, passes 1; machine: {os.cpu_count()} cores, numpy GEMM {gemm_rate()} GFLOP/s "
             f"on 1 thread; {time.strftime('%Y-%m-%d %H:%M')}", "",
             "| run | corpus | seconds | vs gensim serial | vs LdaMulticore | peak MB | held-out per-word bound |",
             "|---|---|---|---|---|---|---|"]
    fmt = lambda v, f: f % v if isinstance(v, (int, float)) else "-"
    serial = {c: r["seconds"] for n, c, r in rows if n.startswith("gensim LdaModel") and r.get("seconds")}
    multi = {c: r["seconds"] for n, c, r in rows if n.startswith("gensim LdaMulticore") and r.get("seconds")}
    for name, corpus, r in rows:
        ratio = lambda base: f"{r['seconds'] / base[corpus]:.2f}×" if corpus in base and r.get("seconds") else "-"
        lines.append(f"| {name} | {corpus} | {fmt(r.get('seconds'), '%.2f')} | {ratio(serial)} | {ratio(multi)} | "
                     f"{fmt(r.get('peak_mb'), '%.0f')} | {fmt(r.get('bound'), '%.3f')} |")
    return "\n".join(lines)


def repeated_corpus(corpus, times):
    """<corpus>_tfidf.mm repeated `times` times (documents renumbered), written once into WORK."""
    src = os.path.join(WORK, "corpora", f"{corpus}_tfidf.mm")
    dst = os.path.join(WORK, "corpora", f"{corpus}x{times}_tfidf.mm")
    if os.path.exists(dst):
        return dst
    with open(src) as f:
        f.readline()
        docs, terms, nnz = map(int, f.readline().split())
        body = f.read().splitlines()
    with open(dst + ".tmp", "w") as out:
        out.write("%%MatrixMarket matrix coordinate real general\n")
        out.write(f"{docs * times} {terms} {nnz * times}\n")
        for r in range(times):
            off = r * docs
            out.write("".join(f"{int(d) + off} {t} {v}\n" for d, t, v in (l.split() for l in body if l and l[0] != "%")))
    os.replace(dst + ".tmp", dst)
    return dst


def gemm_rate():
    code = ("import numpy as np, time\nn=2000\na=np.random.rand(n,n);b=np.random.rand(n,n);a@b\nt=time.time();a@b;a@b\n"
            "print(round(4*n**3/(time.time()-t)/1e9,1))")
    try:
        return sh(PY, "-c", code).strip()
    except Exception:
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["lsi", "lda"])
    ap.add_argument("--corpora", nargs="+", default=["gcide", "news"])
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--skip-gensim", action="store_true")
    ap.add_argument("--memory", action="store_true")
    a = ap.parse_args()
    if not a.skip_gensim and not os.path.exists(PY):
        sys.exit(f"no gensim venv in {WORK}: run {GENSIM}/setup.sh first (or pass --skip-gensim)")
    subprocess.run(["cargo", "build", "--release", "--bins", "-q"], cwd=REPO, check=True)
    if a.what == "lda":
        report = lda_report(a)
        print(report)
        open(os.path.join(WORK, "topicd_lda.md"), "w").write(report + "\n")
        return
    k = a.topics
    rows = []
    for corpus in a.corpora:
        ex = exact(corpus, k)
        if a.skip_gensim:
            corpus_file = os.path.join(DATA, f"{corpus}_tfidf.mm.gz")
        else:
            sh(PY, os.path.join(GENSIM, "benchdata.py"), "lsi", corpus, str(k))
            corpus_file = os.path.join(WORK, "corpora", f"{corpus}_tfidf.mm")
            rows.append(("gensim LsiModel one-pass (chunksize 10000, power_iters 2)", corpus,
                         gensim_lsi(corpus, k, 10000, True)))
            rows.append(("gensim LsiModel multi-pass (chunksize 20000, power_iters 2)", corpus,
                         gensim_lsi(corpus, k, 20000, False)))
        dictionary = os.path.join(DATA, f"{corpus}_wordids.txt.gz")
        rows.append(("topicd default (multi-pass, power_iters 3)", corpus, topicd_lsi(corpus_file, dictionary, k, [], ex)))
        rows.append(("topicd --onepass (chunksize 10000, power_iters 2)", corpus,
                     topicd_lsi(corpus_file, dictionary, k, ["--onepass", "--chunksize", "10000", "--power-iters", "2"], ex)))
    if a.memory:
        big = repeated_corpus("gcide", 10)
        rows.append(("topicd default, gcide repeated 10× (1.2M docs)", "gcide×10",
                     topicd_lsi(big, os.path.join(DATA, "gcide_wordids.txt.gz"), k, [], None)))
    lines = [f"LSI, K={k}; machine: {os.cpu_count()} cores, numpy GEMM {gemm_rate()} GFLOP/s on 1 thread; "
             f"{time.strftime('%Y-%m-%d %H:%M')}", "",
             "| run | corpus | seconds | vs gensim one-pass | peak MB | relerr mean | relerr max |", "|---|---|---|---|---|---|---|"]
    base = {c: r["seconds"] for n, c, r in rows if n.startswith("gensim LsiModel one-pass") and r.get("seconds")}
    fmt = lambda v, f: f % v if isinstance(v, (int, float)) else "-"
    for name, corpus, r in rows:
        ratio = (f"{r['seconds'] / base[corpus]:.2f}×" if corpus in base and r.get("seconds") else "-")
        lines.append(f"| {name} | {corpus} | {fmt(r.get('seconds'), '%.2f')} | {ratio} | {fmt(r.get('peak_mb'), '%.0f')} | "
                     f"{fmt(r.get('relerr_mean'), '%.4f')} | {fmt(r.get('relerr_max'), '%.4f')} |")
    report = "\n".join(lines)
    print(report)
    os.makedirs(WORK, exist_ok=True)
    open(os.path.join(WORK, "topicd_lsi.md"), "w").write(report + "\n")


if __name__ == "__main__":
    main()
