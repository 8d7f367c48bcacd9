#!/usr/bin/env python3
"""The rate of `topicctl infer` on corpora of English Wikipedia's shape (issue 11: 20,000 documents/s).

    bench/infer.py [--train 0.01] [--on 0.01 0.05] [--jobs lsi lda] [--repeats 3] [--against TOPICD]

Trains, on a fresh release daemon, LSI K=400 (topicd's defaults) on the --train slice's TF-IDF
corpus and LDA K=100 (chunksize 2000, one pass, seed 1) on its bag of words, as bench/scale.py
does; then times `topicctl infer` of each --on slice's matching corpus (plain text, in the page
cache), --repeats times each, in both outputs: `--npy` (every weight, binary) and the text lines.
The model is loaded once before the timing (a first `infer` of a few documents): a loaded model
is what a serving daemon has; the load itself (about 1 s for the 320 MB U) is printed apart.

Printed per run: wall seconds, documents/s, and the CPU seconds of topicctl (user + system, from
its rusage) and of the daemon (from /proc/PID/stat, before and after): on a 2-core machine both
share the cores, so 20,000 documents/s leaves 100 CPU-µs per document for the two together.
Records are appended to $TOPICD_BENCH_DIR/infer.jsonl. The slices come from
`bench/scale.py generate --fractions 0.01 0.05` (in $TOPICD_BENCH_DIR/scale/).

`--against PATH` compares this checkout's daemon with another build (an earlier commit's
target/release/topicd): the models are trained once, by this checkout's daemon, and each timed run
starts a daemon of either binary on their data directory, the two alternated run by run; the
records name the binary (`topicd`).
"""
import argparse, json, os, resource, subprocess, sys, time

import contextlib, shutil, tempfile

from run import ENV, TOPICD, fresh_daemon  # bench/run.py: a topicd on a throwaway data directory
from scale import JOBS, TOPICCTL, WORK, files

TICKS = os.sysconf("SC_CLK_TCK")


def daemon_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def daemon_pid(tmp):
    sock = os.path.join(tmp, "control.sock")
    out = subprocess.run(["pgrep", "-f", f"topicd --data-dir {os.path.join(tmp, 'data')}"],
                         capture_output=True, text=True).stdout.split()
    if len(out) != 1:
        sys.exit(f"cannot tell the daemon of {sock} apart: {out}")
    return int(out[0])


def num_docs(corpus):
    """The documents a plain Matrix Market file's header declares."""
    with open(corpus) as f:
        return int(next(line for line in f if not line.startswith("%")).split()[0])


def timed_infer(sock, pid, job, corpus, out, npy):
    args = [TOPICCTL, "--socket", sock, "infer", str(job), "--corpus", corpus, "--out", out]
    if npy:
        args.append("--npy")
    before_daemon = daemon_cpu(pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run(args, check=True)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, client, daemon_cpu(pid) - before_daemon


def one_doc_corpus(tmp):
    one = os.path.join(tmp, "one.mm")
    with open(one, "w") as f:
        f.write("%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 1\n")
    return one


def train(ctl, job, fraction):
    spec, fs = JOBS[job], files(fraction)
    jid = ctl("submit", job, "--corpus", fs[spec["corpus"]], "--dictionary", fs["dictionary"],
              "--topics", str(spec["topics"]), *spec["args"]).strip()
    ctl("wait", jid)
    return jid


@contextlib.contextmanager
def daemon_on(binary, data, sock):
    """A daemon of `binary` on an existing data directory; yields its pid."""
    if os.path.exists(sock):
        os.remove(sock)
    d = subprocess.Popen([binary, "--data-dir", data, "--control-socket", sock], stderr=subprocess.DEVNULL, env=ENV)
    try:
        for _ in range(400):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        yield d.pid
    finally:
        d.terminate()
        d.wait()


def record(a, job, on, docs, npy, wall, client, daemon, load, binary=None):
    rec = dict(job=job, train=a.train, on=on, docs=docs, output="npy" if npy else "text",
               seconds=round(wall, 2), docs_per_second=round(docs / wall),
               topicctl_cpu=round(client, 2), daemon_cpu=round(daemon, 2),
               cpu_us_per_doc=round(1e6 * (client + daemon) / docs), load_seconds=round(load, 2),
               date=time.strftime("%Y-%m-%d"))
    if binary:
        rec["topicd"] = binary
    print(json.dumps(rec), flush=True)
    with open(os.path.join(WORK, "infer.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=float, default=0.01, help="the slice the models are trained on")
    ap.add_argument("--on", type=float, nargs="+", default=[0.01], help="the slices inferred")
    ap.add_argument("--jobs", nargs="+", default=["lsi", "lda"], choices=sorted(JOBS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", metavar="TOPICD", help="another topicd binary, alternated with this checkout's")
    a = ap.parse_args()
    if a.against:
        return against(a)
    with fresh_daemon() as (ctl, _peak, tmp):
        sock, pid = os.path.join(tmp, "control.sock"), daemon_pid(tmp)
        for job in a.jobs:
            jid = train(ctl, job, a.train)
            # load the model: a corpus of one document
            t0 = time.time()
            ctl("infer", jid, "--corpus", one_doc_corpus(tmp))
            load = time.time() - t0
            print(f"{job}: model trained on {a.train:g}, loaded in {load:.2f} s")
            for on in a.on:
                corpus = files(on)[JOBS[job]["corpus"]]
                docs = num_docs(corpus)
                for npy in (True, False):
                    out = os.path.join(tmp, "inferred.npy" if npy else "inferred.txt")
                    for _ in range(a.repeats):
                        record(a, job, on, docs, npy, *timed_infer(sock, pid, jid, corpus, out, npy), load)
                    os.remove(out)


def against(a):
    """--against: the models trained once; each timed run (`--npy`) on a fresh daemon of either binary."""
    tmp = tempfile.mkdtemp(prefix="topicd-bench-", dir=WORK)
    data, sock = os.path.join(tmp, "data"), os.path.join(tmp, "control.sock")
    ctl = lambda *args: subprocess.run([TOPICCTL, "--socket", sock, *args], check=True, capture_output=True,
                                       text=True, env=ENV).stdout
    try:
        with daemon_on(TOPICD, data, sock):
            trained = {job: train(ctl, job, a.train) for job in a.jobs}
        out = os.path.join(tmp, "inferred.npy")
        for job, jid in trained.items():
            for on in a.on:
                corpus = files(on)[JOBS[job]["corpus"]]
                docs = num_docs(corpus)
                for _ in range(a.repeats):
                    for binary in (a.against, TOPICD):
                        with daemon_on(binary, data, sock) as pid:
                            t0 = time.time()
                            ctl("infer", jid, "--corpus", one_doc_corpus(tmp))
                            load = time.time() - t0
                            record(a, job, on, docs, True, *timed_infer(sock, pid, jid, corpus, out, True), load,
                                   binary=binary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
