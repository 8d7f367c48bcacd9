#!/usr/bin/env python3
"""The cluster against the standalone daemon, and against gensim's distributed mode, in one run.

    bench/cluster.py [--repeats 3] [--jobs lsi lsi2000 lda] [--skip-gensim] [--no-netns] [--warm]
    bench/cluster.py --netns-scaling [--rate 1gbit] [--workers 1 2 4] [--jobs lsi lda]   (docs/scaling.md)
    bench/cluster.py --profile lda | --report JSONL

Configurations, each a fresh set of daemons per job (as bench/run.py does):
  a  standalone   one topicd (every core)
  b  plain        a dispatcher with `local_worker = false` + 1 worker process, `cluster_encrypt = false`
  c  sealed       the same with encryption on (the default)
  d  2 workers    a dispatcher + 2 worker processes of 1 training thread each (`threads = 1`, as gensim's
                  Pyro workers have 1 BLAS thread each), unencrypted (Pyro is not encrypted either),
                  against gensim's distributed mode (name server + dispatcher + 2 Pyro workers, through
                  ../shared/bench/gensim/bench_harness.py --dist) on the same corpus.
Jobs on gcide (or with `--corpus PREFIX` on a corpus of `topicctl generate`, LSI with K=400): lsi (K=100, topicd's defaults: multi-pass, chunksize 20000), lsi2000 (the same with
chunksize 2000), lda (K=100, chunksize 2000, passes 1, seed 1); for d also gensim's LSI one-pass with
chunksize 10000 (gensim-dist's only algorithm) against topicd --onepass with the same parameters, and
gensim's distributed LDA at chunksize 2000 (it hung on this machine in 3 of 3 runs: it gets a timeout and
is tried once) and 10000.

The configurations alternate (a b c d a b c d ...) `--repeats` times; each figure is the median with the
spread (min-max) of the repeats. Wall time is from submit to done. Each run records the 1-minute load
average when it starts (the machine is shared). Every daemon (and each gensim run) lives in a fresh
network namespace of its own (root only; `--no-netns` to run on the host's loopback): the namespace's
loopback counters are then the bytes on the wire, TCP/IP headers included, of that run alone; beside them,
the application's own count (`topicctl --json workers`: bytes in + out of every worker). Bytes per pass =
bytes of the job / passes (the first pass of a multi-pass LSI job also carries the chunks, which workers
cache; `--netns-scaling` measures each pass on its own). Every model of b, c and d is compared with a's.

`--profile JOB`: configuration b once, with `perf record -F 499` on the dispatcher and the worker, and
the share of CPU samples by kind (numerics, copies and coding, kernel, reading, hashing).

`--no-page-reporting`: run with the VM's free page reporting off (root; the `virtio_balloon` driver is
unbound for the run and bound again at exit). With it on, the host takes back pages a few seconds after
they are freed, and touching them again costs a fault on the host: 0.3–0.8 GB/s here, against 7–9 GB/s
for pages the host still backs. Two processes touch about twice the fresh memory of one, so this VM's
reporting weighs on b and c more than on a (bench/README.md, "Results (2026-12-01)"). Every round
records the state (`page_reporting`).

`--netns-scaling`: the dispatcher in one namespace, each worker in its own, joined to it by a veth pair
whose both ends are limited by `tc qdisc add dev VETH root tbf rate RATE burst 256kb latency 50ms`;
per pass: its wall time, the bytes on each worker's link; per task: compute time (from the workers' debug
logs). Namespaces and veth pairs are removed on exit (also on Ctrl-C).

Results: a markdown report on stdout and in $TOPICD_BENCH_DIR/topicd_cluster.md (or
topicd_scaling.md), raw records in topicd_cluster.jsonl. Environment as bench/run.py.
"""
import argparse, atexit, contextlib, hashlib, json, os, shutil, signal, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (paths, environment, gemm_rate, errors, exact)

REPO, WORK, DATA, GENSIM, PY = bench.REPO, bench.WORK, bench.DATA, bench.GENSIM, bench.PY
TOPICD, TOPICCTL, ENV = bench.TOPICD, bench.TOPICCTL, bench.ENV
NAMESPACES = []  # created by this process, removed at exit


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


BALLOON = "/sys/bus/virtio/drivers/virtio_balloon"


def balloon_devices():
    return sorted(d for d in os.listdir(BALLOON) if d.startswith("virtio")) if os.path.isdir(BALLOON) else []


def page_reporting():
    """Whether the VM reports freed pages to its host: "on" (a virtio balloon is bound), "off" (its
    driver is there with no device bound), or "none" (no such driver: not this kind of VM)."""
    if not os.path.isdir(BALLOON):
        return "none"
    return "on" if balloon_devices() else "off"


def page_reporting_off():
    """Unbind the virtio balloon devices for the run; they are bound again at exit."""
    devices = balloon_devices()
    for d in devices:
        open(os.path.join(BALLOON, "unbind"), "w").write(d)

    def rebind():
        for d in devices:
            if not os.path.exists(os.path.join(BALLOON, d)):
                open(os.path.join(BALLOON, "bind"), "w").write(d)
    atexit.register(rebind)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def cleanup_namespaces():
    while NAMESPACES:
        ip("netns", "del", NAMESPACES.pop(), check=False)


atexit.register(cleanup_namespaces)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, lambda s, f: sys.exit(128 + s))


class Netns:
    """A network namespace with its loopback up, and a sleeping process in it whose /proc/PID/net/dev gives
    the namespace's interface counters."""
    count = 0

    def __init__(self):
        Netns.count += 1
        self.name = f"tdbench{os.getpid()}n{Netns.count}"
        ip("netns", "add", self.name)
        NAMESPACES.append(self.name)
        ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        self.anchor = subprocess.Popen(self.prefix() + ["sleep", "infinity"])
        # until `ip netns exec` has entered the namespace, the anchor's counters are the host's
        own = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{self.anchor.pid}/ns/net") == own or \
                os.readlink(f"/proc/{self.anchor.pid}/exe").endswith("/ip"):
            time.sleep(0.01)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def counters(self, dev="lo"):
        """(rx_bytes, tx_bytes) of `dev` in this namespace."""
        for line in open(f"/proc/{self.anchor.pid}/net/dev"):
            name, _, rest = line.partition(":")
            if name.strip() == dev:
                f = rest.split()
                return int(f[0]), int(f[8])
        raise KeyError(dev)

    def close(self):
        self.anchor.kill()
        self.anchor.wait()
        ip("netns", "del", self.name, check=False)
        if self.name in NAMESPACES:
            NAMESPACES.remove(self.name)


def write_secret(path):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(os.urandom(36).hex())


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemons:
    """A standalone daemon (workers = 0) or a dispatcher with `workers` worker processes, in a fresh
    network namespace (or on the host's loopback)."""

    def __init__(self, workers=0, encrypt=False, worker_threads=0, netns=True, log_debug=False, star=None,
                 dispatcher_config=""):
        """`star`: a `scaling.Star` whose node 0 runs the dispatcher and node i worker i (then `netns` is
        ignored)."""
        self.tmp = tempfile.mkdtemp(prefix="topicd-cluster-", dir=WORK)
        self.ns = Netns() if netns and not star else None
        self.procs = []
        self.sock = os.path.join(self.tmp, "control.sock")
        pre = star.prefix(0) if star else self.ns.prefix() if self.ns else []
        env = dict(ENV, RUST_LOG="debug,sled=info,tarpc=warn") if log_debug else ENV
        self.env = env
        base = [TOPICD, "--data-dir", os.path.join(self.tmp, "data"), "--control-socket", self.sock]
        if workers == 0:
            self.spawn("topicd", pre + base)
        else:
            secret = os.path.join(self.tmp, "cluster.secret")
            write_secret(secret)
            enc = "true" if encrypt else "false"
            dconf = self.write("dispatcher.toml", f"local_worker = false\ncluster_encrypt = {enc}\n{dispatcher_config}")
            wconf = self.write("worker.toml", f"cluster_encrypt = {enc}\nthreads = {worker_threads}\n")
            self.addr = star.address(0) if star else f"127.0.0.1:{7700 if netns else free_port()}"
            listen = f"0.0.0.0:{self.addr.rsplit(':', 1)[1]}" if star else self.addr
            self.spawn("dispatcher", pre + base + ["--config", dconf, "--role", "dispatcher", "--listen", listen,
                                                   "--cluster-secret-file", secret])
            self.wait_socket()
            for i in range(workers):
                self.start_worker(i, wconf, secret, star.prefix(i + 1) if star else pre)
        self.wait_socket()
        if workers:
            self.wait_workers(workers)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        open(path, "w").write(text)
        return path

    def spawn(self, role, cmd):
        log = open(os.path.join(self.tmp, f"{role}.log"), "w")
        self.procs.append((role, subprocess.Popen(cmd, stderr=log, stdout=log, env=self.env)))

    def start_worker(self, i, wconf, secret, pre):
        self.spawn(f"worker{i}", pre + [TOPICD, "--config", wconf, "--role", "worker", "--dispatcher",
                                        self.addr, "--cluster-secret-file", secret,
                                        "--data-dir", os.path.join(self.tmp, f"worker{i}")])

    def wait_socket(self):
        for _ in range(400):
            if os.path.exists(self.sock):
                return
            for role, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{role} exited: {self.log(role)[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("no control socket")

    def wait_workers(self, n):
        deadline = time.time() + 60
        while sum(w["state"] == "alive" for w in self.workers()) < n:
            if time.time() > deadline:
                raise RuntimeError(f"{n} workers did not register: {self.workers()}\n{self.log('dispatcher')[-3000:]}")
            time.sleep(0.1)

    def log(self, role):
        return open(os.path.join(self.tmp, f"{role}.log"), errors="replace").read()

    def ctl(self, *args):
        return bench.sh(TOPICCTL, "--socket", self.sock, *args)

    def workers(self):
        return json.loads(self.ctl("--json", "workers"))

    def app_bytes(self):
        """Bytes in + out of every worker, as the dispatcher counts them."""
        return sum(w["bytes_in"] + w["bytes_out"] for w in self.workers())

    def cpu(self):
        """CPU seconds (user + system) used so far by each daemon process, by role."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for role, p in self.procs:
            try:
                f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
                out[role] = (int(f[11]) + int(f[12])) / tick
            except (OSError, IndexError):
                out[role] = 0.0
        return out

    def wire_bytes(self):
        """Bytes sent on the namespace's loopback (each byte sent on lo is counted once in tx)."""
        return self.ns.counters("lo")[1] if self.ns else None

    def close(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for _, p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.ns:
            self.ns.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def daemons(**kw):
    d = Daemons(**kw)
    try:
        yield d
    finally:
        d.close()


def corpus_files(prefix=None):
    """gcide: the unpacked files when the gensim venv has unpacked them (they are then the same files gensim
    reads), the .gz files otherwise. `prefix`: a corpus that `topicctl generate` wrote (PREFIX_tfidf.mm,
    PREFIX_bow.mm, PREFIX_wordids.txt, each plain or .gz), on which LSI has K=400 as in bench/scale.py; it has
    no held-out part, so models are compared by the bytes of their exported arrays."""
    if prefix:
        f = lambda n: next((p for p in (f"{prefix}_{n}", f"{prefix}_{n}.gz") if os.path.exists(p)), f"{prefix}_{n}")
        return dict(tfidf=f("tfidf.mm"), train=f("bow.mm"), heldout=None, dictionary=f("wordids.txt"),
                    name=os.path.basename(prefix), lsi_topics=400)
    plain = os.path.join(WORK, "corpora")
    if os.path.exists(PY):
        bench.sh(PY, os.path.join(GENSIM, "benchdata.py"), "lsi", "gcide", "100")
        bench.sh(PY, os.path.join(GENSIM, "benchdata.py"), "lda", "gcide")
        f = lambda n: os.path.join(plain, n)
    else:
        f = lambda n: os.path.join(DATA, n + ".gz")
    return dict(tfidf=f("gcide_tfidf.mm"), train=f("gcide_bow_train.mm"), heldout=f("gcide_bow_heldout.mm"),
                dictionary=os.path.join(DATA, "gcide_wordids.txt.gz"), name="gcide", lsi_topics=100)


def job_args(job, files):
    lsi = ["lsi", "--corpus", files["tfidf"], "--dictionary", files["dictionary"], "--topics", str(files["lsi_topics"])]
    lda = ["lda", "--corpus", files["train"], "--dictionary", files["dictionary"], "--topics", "100", "--seed", "1"]
    return {"lsi": lsi, "lsi2000": lsi + ["--chunksize", "2000"],
            "lsi-onepass10000": lsi + ["--onepass", "--chunksize", "10000", "--power-iters", "2"],
            "lda": lda + ["--chunksize", "2000"], "lda10000": lda + ["--chunksize", "10000"]}[job]


def run_job(d, job, files):
    """One job on daemons `d`: wall time, bytes, passes, and what identifies the model."""
    rec = dict(load1=loadavg())
    app0, wire0 = (d.app_bytes() if d.procs[0][0] == "dispatcher" else None), d.wire_bytes()
    tasks0 = sum(w["tasks_done"] for w in d.workers()) if app0 is not None else 0
    cpu0 = d.cpu()
    t0 = time.time()
    jid = d.ctl("submit", *job_args(job, files)).strip()
    d.ctl("wait", jid)
    rec["seconds"] = round(time.time() - t0, 3)
    cpu1 = d.cpu()
    rec["cpu"] = {role: round(cpu1[role] - cpu0.get(role, 0.0), 2) for role in cpu1}
    rec["cpu_seconds"] = round(sum(rec["cpu"].values()), 2)
    status = json.loads(d.ctl("--json", "status", jid))
    rec["passes"] = status["progress"]["passes"]
    if app0 is not None:
        ws = d.workers()
        rec["app_bytes"] = sum(w["bytes_in"] + w["bytes_out"] for w in ws) - app0
        rec["app_bytes_to_workers"] = sum(w["bytes_out"] for w in ws)
        rec["tasks"] = sum(w["tasks_done"] for w in ws) - tasks0
    if wire0 is not None:
        rec["wire_bytes"] = d.wire_bytes() - wire0
    out = os.path.join(d.tmp, f"export{jid}")
    if files["heldout"] is None:
        # no held-out part and no exact values: the model is the hash of its exported arrays
        d.ctl("export", jid, "--format", "npy", "--out", out)
        h = hashlib.sha256()
        for name in sorted(n for n in os.listdir(out) if n.endswith(".npy")):
            with open(os.path.join(out, name), "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    h.update(block)
        rec["model"] = h.hexdigest()[:16]
        shutil.rmtree(out, ignore_errors=True)
    elif job.startswith("lsi"):
        d.ctl("export", jid, "--format", "json", "--out", out)
        s = json.load(open(os.path.join(out, "model.json")))["singular_values"]
        rec["model"] = s
        rec["relerr_mean"] = bench.errors(s, bench.exact("gcide", 100))["relerr_mean"]
    else:
        rec["model"] = rec["bound"] = json.loads(d.ctl("--json", "eval", jid, "--corpus", files["heldout"]))["per_word_bound"]
    return rec


def gensim_dist(mode, chunksize, timeout, netns):
    """gensim's distributed mode (name server, dispatcher, 2 Pyro workers) through the shared harness, in a
    namespace of its own: train seconds (the harness's), status, bytes on the namespace's loopback."""
    ns = Netns() if netns else None
    results = os.path.join(WORK, "results.jsonl")
    before = os.path.getsize(results) if os.path.exists(results) else 0
    rec = dict(load1=loadavg())
    wire0 = ns.counters("lo")[1] if ns else None
    cmd = [PY, os.path.join(GENSIM, "bench_harness.py"), "--timeout", str(timeout), "--dist", mode, "--nworkers", "2",
           "--", "--mode", mode, "--corpus", "gcide", "--topics", "100", "--chunksize", str(chunksize)]
    if mode == "lsi":
        cmd += ["--onepass", "1"]
    try:
        subprocess.run((ns.prefix() if ns else []) + cmd, env=ENV, check=False, cwd=GENSIM,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if ns:
            rec["wire_bytes"] = ns.counters("lo")[1] - wire0
    finally:
        if ns:
            ns.close()
    with open(results) as f:
        f.seek(before)
        lines = f.read().strip().splitlines()
    last = json.loads(lines[-1]) if lines else {"status": "no record"}
    q = last.get("quality", {})
    rec.update(seconds=last.get("train_seconds"), status=last.get("status"), passes=1,
               relerr_mean=q.get("relerr_mean"), bound=q.get("heldout_per_word_bound"))
    return rec


PROFILE_GROUPS = (  # (group, pattern of a perf symbol line), first match wins
    ("LDA numerics", ("digamma", "ln_gamma", "log_fma", "phinorm", "e_step", "lda::")),
    ("LSI numerics (BLAS, sparse products)", ("dgemm", "dtrsm", "lsi::", "products")),
    ("copies, (de)coding, allocation, page faults",
     ("memmove", "memset", "memcpy", "from_iter", "encode", "decode", "to_bytes", "from_bytes", "extend",
      "clear_page", "page_fault", "alloc", "folio", "madvise", "free_pages", "unmap", "mmap")),
    ("reading the corpus", ("corpus::", "MmReader", "parse")),
    ("hashing chunks", ("xxh3",)),
    ("kernel, other (sockets, scheduling)", ("[k]",)),
)


def profile(job, files, encrypt=False):
    """Config b with `perf record -F 499` on the dispatcher and the worker; the share of CPU samples by group
    (closures that perf cannot name are "unnamed": mostly the numerics' parallel loops)."""
    lines = []
    with daemons(workers=1, encrypt=encrypt) as d:
        perfs = [(role, os.path.join(WORK, f"perf-{job}-{role}.data")) for role, _ in d.procs]
        procs = [subprocess.Popen(["perf", "record", "-F", "499", "-p", str(p.pid), "-o", out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for (_, out), (_, p) in zip(perfs, d.procs)]
        time.sleep(1)
        rec = run_job(d, job, files)
        for p in procs:
            p.send_signal(signal.SIGINT)
            p.wait()
    lines.append(f"{job}, dispatcher + 1 worker, {'encrypted' if encrypt else 'plain'}: {rec['seconds']} s, CPU "
                 f"{rec['cpu']}, load {rec['load1']}; perf data in {WORK}/perf-{job}-*.data")
    for role, out in perfs:
        text = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", "symbol", "--stdio", "-g",
                               "none"], capture_output=True, text=True).stdout
        shares = {}
        for line in text.splitlines():
            parts = line.split(None, 1)
            if line.startswith("#") or len(parts) < 2 or not parts[0].endswith("%"):
                continue
            group = next((g for g, pats in PROFILE_GROUPS if any(x in parts[1] for x in pats)),
                         "unnamed closures and other")
            shares[group] = shares.get(group, 0.0) + float(parts[0][:-1])
        lines.append(f"  {role}: " + "; ".join(f"{v:.0f}% {g}" for g, v in sorted(shares.items(), key=lambda x: -x[1])))
    return "\n".join(lines)


CONFIGS = {  # name -> Daemons keywords
    "a standalone": dict(workers=0),
    "b dispatcher + 1 worker, plain": dict(workers=1, encrypt=False),
    "c dispatcher + 1 worker, encrypted": dict(workers=1, encrypt=True),
    "d dispatcher + 2 workers (threads 1), plain": dict(workers=2, encrypt=False, worker_threads=1),
}


def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def spread(xs, f="%.2f"):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return f"{f % min(xs)}–{f % max(xs)}" if xs else "-"


def mb(x):
    return f"{x / 1e6:.1f}" if isinstance(x, (int, float)) else "-"


def benchmark(a):
    files = corpus_files(a.corpus)
    records = []  # (config, job, rec)
    log = open(os.path.join(WORK, "topicd_cluster.jsonl"), "a")
    netns = not a.no_netns
    gensim_hung = set()
    for r in range(a.repeats):
        machine = dict(kind="machine", repeat=r, load1=loadavg(), gemm=bench.gemm_rate(),
                       page_reporting=page_reporting(), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        log.write(json.dumps(machine) + "\n")
        records.append(machine)
        for config, kw in CONFIGS.items():
            jobs = list(a.jobs) if config[0] in a.configs else []
            if config.startswith("d") and jobs:
                jobs += ["lsi-onepass10000", "lda10000"]
            for job in jobs:
                with daemons(netns=netns, dispatcher_config=a.dispatcher_config, **kw) as d:
                    try:
                        if a.warm:
                            run_job(d, job, files)  # untimed: the daemons' memory is theirs
                        rec = run_job(d, job, files)
                    except Exception as e:
                        rec = dict(status=f"error: {e}"[:500])
                rec.update(config=config, job=job, repeat=r, time=time.strftime("%Y-%m-%dT%H:%M:%S"), warm=a.warm,
                           corpus=files["name"], lsi_topics=files["lsi_topics"])
                print(f"[{r}] {config:45s} {job:18s} {rec.get('seconds', '-')!s:>7} s  load {rec.get('load1')}"
                      f"  wire {mb(rec.get('wire_bytes'))} MB", file=sys.stderr, flush=True)
                records.append(rec)
                log.write(json.dumps(rec) + "\n")
                log.flush()
            if config.startswith("d") and not a.skip_gensim and "g" in a.configs:
                for mode, chunksize, job in (("lsi", 10000, "lsi-onepass10000"), ("lda", 2000, "lda"),
                                             ("lda", 10000, "lda10000")):
                    if (mode, chunksize) in gensim_hung:
                        continue
                    rec = gensim_dist(mode, chunksize, a.gensim_timeout, netns)
                    rec.update(config="gensim distributed, 2 Pyro workers", job=job, repeat=r,
                               time=time.strftime("%Y-%m-%dT%H:%M:%S"))
                    if str(rec.get("status", "")).startswith("TIMEOUT"):
                        gensim_hung.add((mode, chunksize))
                    print(f"[{r}] gensim-dist {mode} chunk {chunksize}: {rec.get('seconds')} s {rec.get('status')} "
                          f"wire {mb(rec.get('wire_bytes'))} MB", file=sys.stderr, flush=True)
                    records.append(rec)
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
    return report(records, a)


def report(records, a):
    corpus = next((r["corpus"] for r in records if r.get("corpus")), "gcide")
    k = next((r["lsi_topics"] for r in records if r.get("lsi_topics")), 100)
    jobs_desc = {"lsi": f"LSI K={k} (multi-pass, chunksize 20000, power_iters 3)",
                 "lsi2000": "LSI K=100, chunksize 2000",
                 "lsi-onepass10000": "LSI K=100 one-pass, chunksize 10000, power_iters 2",
                 "lda": "LDA K=100, chunksize 2000, passes 1",
                 "lda10000": "LDA K=100, chunksize 10000, passes 1"}
    machines = [r for r in records if r.get("kind") == "machine"]
    records = [r for r in records if r.get("kind") != "machine"]
    loads = [r["load1"] for r in records if "load1" in r]
    gemm = [float(m["gemm"]) for m in machines if m.get("gemm") not in (None, "?")]
    reporting = "/".join(sorted({m.get("page_reporting", "not recorded") for m in machines})) or "not recorded"
    times = sorted(r["time"] for r in records if r.get("time"))
    shape = "gcide (120,147 documents, 39,305 terms)" if corpus == "gcide" else f"{corpus} (topicctl generate)"
    lines = [f"{shape}; machine: {os.cpu_count()} cores, numpy GEMM on 1 thread "
             f"{spread(gemm, '%.1f') if gemm else 'not recorded'} GFLOP/s (measured before each round); "
             f"{times[0] if times else '?'} to {times[-1] if times else '?'}; "
             f"{a.repeats} repeats, configurations alternated; 1-min load average at the start of the runs: median "
             f"{med(loads):.1f}, {spread(loads, '%.1f')}; free page reporting: {reporting}", ""]
    standalone = {}
    for job in jobs_desc:
        rows = [(c, [r for r in records if r.get("config") == c and r["job"] == job]) for c in
                list(CONFIGS) + ["gensim distributed, 2 Pyro workers"]]
        rows = [(c, rs) for c, rs in rows if rs]
        if not rows:
            continue
        lines += [f"### {jobs_desc[job]}", "",
                  "| configuration | median s | spread s | vs a (paired by repeat: median, spread) | CPU s (dispatcher) | CPU vs a | wire MB (lo) | app MB | passes | MB/pass (wire) "
                  "| tasks | model | ok runs |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        base = base_cpu = None
        base_by_repeat = {}
        for config, rs in rows:
            ok = [r for r in rs if isinstance(r.get("seconds"), (int, float)) and r.get("status", "ok") == "ok"]
            secs = med([r["seconds"] for r in ok])
            if config.startswith("a"):
                base = secs
                standalone[job] = ok[0].get("model") if ok else None
            ratio = f"{secs / base:.2f}×" if secs and base else "-"
            # the same ratio repeat by repeat (a and this configuration ran minutes apart): median and spread
            if config.startswith("a"):
                base_by_repeat = {r["repeat"]: r["seconds"] for r in ok}
            paired = [r["seconds"] / base_by_repeat[r["repeat"]] for r in ok if r.get("repeat") in base_by_repeat]
            if paired and not config.startswith("a"):
                ratio += f" ({med(paired):.2f}×, {spread(paired)})"
            cpu = med([r.get("cpu_seconds") for r in ok])
            if config.startswith("a"):
                base_cpu = cpu
            dcpu = med([r.get("cpu", {}).get("dispatcher") for r in ok])
            cpu_txt = "-" if cpu is None else f"{cpu:.2f}" + (f" ({dcpu:.2f})" if dcpu is not None else "")
            cpu_ratio = f"{cpu / base_cpu:.2f}×" if cpu and base_cpu else "-"
            # a gensim record of a run before 2026-11-29 21:30 read its namespace's counters too early
            wire = med([r.get("wire_bytes") for r in ok if (r.get("wire_bytes") or 0) >= 0])
            app, passes = med([r.get("app_bytes") for r in ok]), med([r.get("passes") for r in ok])
            per_pass = mb(wire / passes) if wire and passes else "-"
            models = [r.get("model") for r in ok]
            if config.startswith("gensim"):
                same = (f"relerr {med([r.get('relerr_mean') for r in ok]):.4f}" if job.startswith("lsi") and ok
                        else f"bound {med([r.get('bound') for r in ok]):.3f}" if ok else "-")
            elif config.startswith("a") and ok and "bound" not in ok[0] and "relerr_mean" not in ok[0]:
                same = f"arrays {ok[0]['model']}"
            elif config.startswith("a"):
                same = (f"relerr {ok[0]['relerr_mean']:.4f}" if job.startswith("lsi") and ok else
                        f"bound {ok[0]['bound']:.3f}" if ok else "-")
            elif job not in standalone:
                same = (f"relerr {med([r.get('relerr_mean') for r in ok]):.4f}" if job.startswith("lsi") and ok
                        else f"bound {med([r.get('bound') for r in ok]):.3f}" if ok else "-")
            else:
                same = "= a" if ok and all(m == standalone[job] for m in models) else "DIFFERS" if ok else "-"
            statuses = sorted({r.get("status", "ok") for r in rs} - {"ok"})
            lines.append(f"| {config} | {'-' if secs is None else '%.2f' % secs} | {spread([r['seconds'] for r in ok])} | "
                         f"{ratio} | {cpu_txt} | {cpu_ratio} | {mb(wire)} | {mb(app)} | {'-' if passes is None else '%g' % passes} | {per_pass} | "
                         f"{'%g' % med([r.get('tasks') for r in ok]) if med([r.get('tasks') for r in ok]) else '-'} | {same} | {len(ok)}/{len(rs)}"
                         f"{' ' + '; '.join(statuses) if statuses else ''} |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --netns-scaling)")
    ap.add_argument("--jobs", nargs="+", default=["lsi", "lsi2000", "lda"])
    ap.add_argument("--skip-gensim", action="store_true")
    ap.add_argument("--configs", default="abcdg", help="which of a b c d and g (gensim, with d) to run")
    ap.add_argument("--dispatcher-config", default="", metavar="TOML",
                    help="lines added to the dispatcher's settings (b, c, d), e.g. 'checkpoint_interval_secs = 3600.0'")
    ap.add_argument("--gensim-timeout", type=int, default=150)
    ap.add_argument("--corpus", metavar="PREFIX", help="a corpus of `topicctl generate` instead of gcide (LSI with "
                    "K=400), e.g. $TOPICD_BENCH_DIR/scale/f0.1 from bench/scale.py; with --configs ab or abc")
    ap.add_argument("--no-netns", action="store_true", help="run on the host's loopback (no wire byte counts)")
    ap.add_argument("--netns-scaling", action="store_true", help="workers behind rate-limited veth links")
    ap.add_argument("--profile", metavar="JOB", help="perf profile of config b on JOB (lsi, lda, ...)")
    ap.add_argument("--report", metavar="JSONL", help="only print the report of the records in JSONL (from a run)")
    ap.add_argument("--rate", default="1gbit")
    ap.add_argument("--no-page-reporting", action="store_true",
                    help="unbind the VM's virtio balloon for the run (root), so freed pages stay backed")
    ap.add_argument("--warm", action="store_true",
                    help="time each job after an untimed run of the same job on the same daemons: the "
                         "steady state of daemons that stay up, where a fresh process pays for its memory")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--worker-threads", type=int, default=0, help="--netns-scaling: threads per worker (0: cores)")
    a = ap.parse_args()
    a.repeats = a.repeats or (1 if a.netns_scaling else 3)
    if a.netns_scaling and a.jobs == ap.get_default("jobs"):
        a.jobs = ["lsi", "lda"]
    if a.report:
        records = [json.loads(line) for line in open(a.report) if line.strip()]
        a.repeats = len({(r.get("repeat"), r.get("time", "")[:10]) for r in records if r.get("config", "").startswith("a")})
        print(report(records, a))
        return
    if (not a.no_netns or a.netns_scaling) and os.geteuid() != 0:
        sys.exit("network namespaces need root: run as root, or pass --no-netns")
    if not a.skip_gensim and not os.path.exists(PY):
        sys.exit(f"no gensim venv in {WORK}: run {GENSIM}/setup.sh first (or pass --skip-gensim)")
    if a.no_page_reporting:
        if os.geteuid() != 0 or page_reporting() != "on":
            sys.exit(f"--no-page-reporting needs root and a bound virtio balloon (page reporting: {page_reporting()})")
        page_reporting_off()
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--bins", "-q"], cwd=REPO, check=True)
    if a.profile:
        out, text = "topicd_profile.md", profile(a.profile, corpus_files())
    elif a.netns_scaling:
        import scaling
        out, text = "topicd_scaling.md", scaling.run(a, corpus_files())
    else:
        out, text = "topicd_cluster.md", benchmark(a)
    print(text)
    open(os.path.join(WORK, out), "w").write(text + "\n")


if __name__ == "__main__":
    main()
