"""Workers behind rate-limited links, for docs/scaling.md (run through `bench/cluster.py --netns-scaling`).

A star of network namespaces: a "switch" namespace holding a bridge, the dispatcher in a namespace of its
own and each worker in another, each joined to the bridge by a veth pair whose two ends are both limited
with `tc qdisc add dev VETH root tbf rate RATE burst 256kb latency 50ms` — so the dispatcher, like a real
host, has one link for all its workers. Nothing is routed outside these namespaces.

Per job and number of workers: wall time; per pass (from `topicctl status`, polled every 0.25 s) its wall
time and the bytes that crossed the dispatcher's link (its veth's counters, polled every 0.05 s); per
task, from the workers' debug log (`task-done`: time to get the inputs, compute, report), and the
partial sums' delivery (`partial-delivered`). All processes share this machine's 2 cores, so more workers
add network and dispatcher work, not compute.
"""
import json, os, re, statistics, subprocess, threading, time

from cluster import Daemons, Netns, NAMESPACES, ip, job_args, loadavg, med, bench  # noqa: F401


class Star:
    """Node 0 (the dispatcher) and nodes 1..n (workers), each with one rate-limited link to a bridge."""

    def __init__(self, workers, rate):
        self.switch = Netns()
        sw = self.switch.name
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        self.nodes = []
        for j in range(workers + 1):
            node = Netns()
            port = f"p{j}"
            ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", node.name)
            ip("-n", sw, "link", "set", port, "master", "br0")
            ip("-n", sw, "link", "set", port, "up")
            ip("-n", node.name, "addr", "add", f"{self.ip(j)}/24", "dev", "eth0")
            ip("-n", node.name, "link", "set", "eth0", "up")
            for ns, dev in ((sw, port), (node.name, "eth0")):
                subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                                rate, "burst", "256kb", "latency", "50ms"], check=True)
            self.nodes.append(node)
        # the bridge forwards only once the ports are up; wait until the dispatcher answers
        for _ in range(100):
            if subprocess.run(self.prefix(1) + ["ping", "-c1", "-W1", self.ip(0)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)

    @staticmethod
    def ip(j):
        return f"10.77.0.{1 if j == 0 else 10 + j}"

    def address(self, j):
        return f"{self.ip(j)}:7700"

    def prefix(self, j):
        return self.nodes[j].prefix()

    def link_bytes(self, j):
        """(received, sent) on node j's link."""
        return self.nodes[j].counters("eth0")

    def close(self):
        for node in self.nodes:
            node.close()
        self.switch.close()


TASK = re.compile(r"phase (\d+) chunk (\d+): inputs ([\d.]+) s, compute ([\d.]+) s, report ([\d.]+) s")
PARTIAL = re.compile(r"partial sum of phase (\d+) delivered in ([\d.]+) s")


def one(job, workers, rate, files, threads):
    """One job on a fresh star of `workers` workers; returns its record."""
    star = Star(workers, rate)
    try:
        d = Daemons(workers=workers, encrypt=False, worker_threads=threads, log_debug=True, star=star)
        try:
            return measure(d, star, job, workers, files)
        finally:
            d.close()
    finally:
        star.close()


def measure(d, star, job, workers, files):
    samples, stop = [], threading.Event()
    state = {"pass": 0}

    def poll_bytes():
        while not stop.is_set():
            rx, tx = star.link_bytes(0)
            samples.append((time.time(), state["pass"], rx + tx, d.cpu()))
            stop.wait(0.05)

    rec = dict(job=job, workers=workers, load1=loadavg())
    cpu0 = d.cpu()
    t0 = time.time()
    jid = d.ctl("submit", *job_args(job, files)).strip()
    sampler = threading.Thread(target=poll_bytes, daemon=True)
    sampler.start()
    passes = []  # (pass, start time)
    while True:
        st = json.loads(d.ctl("--json", "status", jid))
        p = st["progress"]["pass"]
        if not passes or passes[-1][0] != p:
            passes.append((p, time.time()))
            state["pass"] = p
        if st["state"] not in ("queued", "running"):
            break
        time.sleep(0.25)
    rec["seconds"] = round(time.time() - t0, 3)
    stop.set()
    sampler.join()
    rec["cpu"] = {role: round(c - cpu0.get(role, 0.0), 2) for role, c in d.cpu().items()}
    rec["state"] = st["state"]
    rec["passes"] = st["progress"]["passes"]
    ws = d.workers()
    rec["tasks"] = sum(w["tasks_done"] for w in ws)
    rec["app_bytes"] = sum(w["bytes_in"] + w["bytes_out"] for w in ws)
    rx, tx = star.link_bytes(0)
    rec["dispatcher_link_bytes"] = rx + tx
    # per pass: wall time and bytes on the dispatcher's link
    ends = [t for _, t in passes[1:]] + [t0 + rec["seconds"]]
    per_pass = []
    zero = (0, {role: 0.0 for role, _ in d.procs})
    for (p, start), end in zip(passes, ends):
        inside = [(b, c) for t, q, b, c in samples if q == p]
        before = [(b, c) for t, q, b, c in samples if q < p]
        first = before[-1] if before else zero
        last = inside[-1] if inside else first
        per_pass.append(dict(pass_=p, seconds=round(end - start, 3), link_bytes=last[0] - first[0],
                             cpu={role: round(last[1][role] - first[1].get(role, 0.0), 2) for role in last[1]}))
    rec["per_pass"] = per_pass
    # per task: the workers' own account
    tasks, partials = [], []
    for i in range(workers):
        log = d.log(f"worker{i}")
        tasks += [dict(worker=i, phase=int(m[0]), chunk=int(m[1]), inputs=float(m[2]), compute=float(m[3]),
                       report=float(m[4])) for m in TASK.findall(log)]
        partials += [dict(worker=i, phase=int(m[0]), seconds=float(m[1])) for m in PARTIAL.findall(log)]
    rec["task_log"] = tasks
    rec["partials"] = partials
    for key in ("inputs", "compute", "report"):
        rec[f"task_{key}_sum"] = round(sum(t[key] for t in tasks), 3)
        rec[f"task_{key}_median"] = med([t[key] for t in tasks])
    rec["partial_seconds_sum"] = round(sum(p["seconds"] for p in partials), 3)
    return rec


def run(a, files):
    out = open(os.path.join(bench.WORK, "topicd_scaling.jsonl"), "a")
    records = []
    for r in range(a.repeats):
        for job in a.jobs:
            for n in a.workers:
                rec = one(job, n, a.rate, files, a.worker_threads)
                rec.update(repeat=r, rate=a.rate, time=time.strftime("%Y-%m-%dT%H:%M:%S"))
                out.write(json.dumps(rec) + "\n")
                out.flush()
                records.append(rec)
                print(f"[{r}] {job} {n} workers: {rec['seconds']} s, {rec['tasks']} tasks, dispatcher link "
                      f"{rec['dispatcher_link_bytes'] / 1e6:.1f} MB, compute {rec['task_compute_sum']} s, inputs "
                      f"{rec['task_inputs_sum']} s, report {rec['task_report_sum']} s, partials "
                      f"{rec['partial_seconds_sum']} s, load {rec['load1']}", flush=True, file=__import__('sys').stderr)
    return report(records, a)


def report(records, a):
    lines = [f"Workers behind {a.rate} links (tc tbf, burst 256kb, latency 50ms), unencrypted, worker threads "
             f"{a.worker_threads or 'one per core'}; gcide; {time.strftime('%Y-%m-%d %H:%M')}; {a.repeats} repeat(s); "
             f"load average (1 min) at the starts: {', '.join(str(r['load1']) for r in records)}", "",
             "| job | workers | wall s | passes | tasks | dispatcher link MB | MB per pass (each) | s per pass (each) "
             "| compute s (sum over tasks) | median compute per task s | inputs s (sum) | report s (sum) | partial sums s (sum) "
             "| CPU s dispatcher / workers | dispatcher CPU s per pass (each) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        pp = r["per_pass"]
        lines.append(f"| {r['job']} | {r['workers']} | {r['seconds']:.2f} | {r['passes']} | {r['tasks']} | "
                     f"{r['dispatcher_link_bytes'] / 1e6:.1f} | "
                     f"{' / '.join('%.0f' % (p['link_bytes'] / 1e6) for p in pp)} | "
                     f"{' / '.join('%.1f' % p['seconds'] for p in pp)} | {r['task_compute_sum']:.2f} | "
                     f"{r['task_compute_median']:.4f} | {r['task_inputs_sum']:.2f} | {r['task_report_sum']:.2f} | "
                     f"{r['partial_seconds_sum']:.2f} | {r['cpu'].get('dispatcher', 0):.2f} / "
                     f"{sum(v for k, v in r['cpu'].items() if k.startswith('worker')):.2f} | "
                     f"{' / '.join('%.2f' % p['cpu'].get('dispatcher', 0) for p in pp)} |")
    return "\n".join(lines)
