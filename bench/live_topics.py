#!/usr/bin/env python3
"""How many topics stay live through LDA's E-step: gensim's iterations replayed in numpy.

    $TOPICD_BENCH_DIR/venv/bin/python bench/live_topics.py MODEL_DIR CORPUS.mm[.gz] [--docs 300]

MODEL_DIR is `topicctl export --format npy` of an LDA job (lambda.npy, alpha.npy); CORPUS a
Matrix Market bag of words over the same dictionary. For each of the first --docs documents,
gensim's E-step runs from a random γ (Gamma(100, 1/100), as gensim and topicd start),
`iterations` 50, `gamma_threshold` 0.001, and after each update counts the topics that are not
at rest by topicd's rule (numerics/src/lda/e_step/doc.rs): at rest when γ_k = α_k exactly and
exp ψ(α_k) · 2 Σ|c_n| / ε is under a quarter of α_k's ulp.

Prints the mean number of iterations and, per iteration, the mean number of live topics over
the documents still iterating, and the work of the sweeps after the first relative to
sweeping every topic.
"""
import argparse, gzip

import numpy as np
from scipy.special import psi


def documents(path, limit):
    docs = {}
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        header = next(line for line in f if not line.startswith("%"))
        del header
        for line in f:
            d, w, c = line.split()
            d = int(d) - 1
            if d >= limit:
                break
            ids, cts = docs.setdefault(d, ([], []))
            ids.append(int(w) - 1)
            cts.append(float(c))
    return [(np.array(i), np.array(c)) for i, c in docs.values()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("corpus")
    ap.add_argument("--docs", type=int, default=300)
    a = ap.parse_args()
    lam, alpha = np.load(f"{a.model}/lambda.npy"), np.load(f"{a.model}/alpha.npy")
    k = lam.shape[0]
    beta = np.exp(psi(lam) - psi(lam.sum(1))[:, None])
    eps, quarter_ulp, rest_e = np.finfo(float).eps, np.spacing(alpha) / 4, np.exp(psi(alpha))
    rng = np.random.default_rng(0)
    iters, live, running = [], np.zeros(51), np.zeros(51)
    for ids, cts in documents(a.corpus, a.docs):
        b, bound = beta[:, ids], 2 * np.abs(cts).sum() / eps
        g = rng.gamma(100.0, 0.01, k)
        e = np.exp(psi(g))
        phinorm = e @ b + eps
        for it in range(50):
            last = g
            g = alpha + e * ((cts / phinorm) @ b.T)
            e = np.exp(psi(g))
            resting = (g == alpha) & (rest_e * bound < quarter_ulp)
            live[it] += k - resting.sum()
            running[it] += 1
            phinorm = e @ b + eps
            if np.mean(np.abs(g - last)) < 0.001:
                break
        iters.append(it + 1)
    print(f"{len(iters)} documents, K = {k}: {np.mean(iters):.1f} iterations on average (median {np.median(iters):g})")
    print("live topics per iteration:", " ".join(f"{l / n:.1f}" for l, n in zip(live, running) if n))
    print(f"work of the sweeps after the first against all topics: {live.sum() / (k * running.sum()):.2f}")


if __name__ == "__main__":
    main()
