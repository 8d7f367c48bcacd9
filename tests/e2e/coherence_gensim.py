#!/usr/bin/env python3
"""gensim's side of tests/e2e/coherence.rs: the coherence gensim 4.4's CoherenceModel gives for
the top words `topicctl coherence --json` printed (as token lists, with the job's dictionary), and
the top ids gensim's CoherenceModel(model=...) would pick from the model `topicctl export --format
npy` wrote. Prints one JSON object: topics (per-topic coherence), mean, num_docs (documents or
windows counted), top_ids; values that are not finite as null.

    coherence_gensim.py --report R.json --dictionary D.txt (--corpus C.mm | --texts T.txt)
                        [--window-size N] [--model-dir DIR --kind lda|lsi]
"""
import argparse
import json
import math

import numpy as np
from gensim import matutils
from gensim.corpora import Dictionary, MmCorpus
from gensim.models.coherencemodel import CoherenceModel
from gensim.utils import simple_preprocess


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def texts(path):
    """One document per line, as `topicctl prepare` reads them (lines end at \\n, a last line
    may lack it), through simple_preprocess with its defaults (prepare's)."""
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [simple_preprocess(line) for line in lines]


def model_topics(model_dir, kind):
    """`model.get_topics()` of gensim's LdaModel / LsiModel holding this model."""
    if kind == "lda":
        topics = np.load(f"{model_dir}/lambda.npy")
        return topics / topics.sum(axis=1)[:, None]
    projections = np.load(f"{model_dir}/u.npy").T
    rows = []
    for i in range(len(projections)):
        c = np.asarray(projections[i, :]).flatten()
        norm = np.sqrt(np.sum(np.dot(c, c)))
        rows.append(1.0 * c / norm)
    return np.array(rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--report", required=True)
    p.add_argument("--dictionary", required=True)
    p.add_argument("--corpus")
    p.add_argument("--texts")
    p.add_argument("--window-size", type=int)
    p.add_argument("--model-dir")
    p.add_argument("--kind")
    a = p.parse_args()

    report = json.load(open(a.report))
    dictionary = Dictionary.load_from_text(a.dictionary)
    topn = report["topn"]
    topics = [[w["token"] for w in t["words"]] for t in report["topics"]]
    kwargs = dict(topics=topics, dictionary=dictionary, coherence=report["measure"], topn=topn,
                  processes=1)
    if a.corpus:
        kwargs["corpus"] = MmCorpus(a.corpus)
    if a.texts:
        kwargs["texts"] = texts(a.texts)
    if a.window_size:
        kwargs["window_size"] = a.window_size
    cm = CoherenceModel(**kwargs)
    per_topic = cm.get_coherence_per_topic()
    out = {
        "topics": [finite_or_none(x) for x in per_topic],
        "mean": finite_or_none(cm.aggregate_measures(per_topic)),
        "num_docs": int(cm._accumulator.num_docs),
    }
    if a.model_dir:
        out["top_ids"] = [matutils.argsort(t, topn=topn, reverse=True).tolist()
                          for t in model_topics(a.model_dir, a.kind)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
