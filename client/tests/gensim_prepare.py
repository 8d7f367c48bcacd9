#!/usr/bin/env python3
"""What `topicctl prepare` must write, written by gensim itself.

Usage: gensim_prepare.py DOCS PREFIX [--no-below N] [--no-above F] [--keep-n N|none]
                         [--min-len N] [--max-len N] [--deacc] [--stopwords FILE]

DOCS has one document per line (split at b"\\n" only, read as bytes: simple_preprocess
decodes with errors='ignore'). Writes PREFIX_wordids.txt (Dictionary.save_as_text),
PREFIX_bow.mm and PREFIX_tfidf.mm (MmCorpus.serialize, without id2word), and prints the
seconds the whole pipeline took. Used by client/tests/cli/prepare.rs and bench/prepare.py.
"""
import sys

sys.dont_write_bytecode = True
import argparse
import logging
import os
import time

from gensim.corpora import Dictionary, MmCorpus
from gensim.models import TfidfModel
from gensim.utils import simple_preprocess


def main():
    p = argparse.ArgumentParser()
    p.add_argument("docs")
    p.add_argument("prefix")
    p.add_argument("--no-below", type=int, default=5)
    p.add_argument("--no-above", type=float, default=0.5)
    p.add_argument("--keep-n", default="100000")
    p.add_argument("--min-len", type=int, default=2)
    p.add_argument("--max-len", type=int, default=15)
    p.add_argument("--deacc", action="store_true")
    p.add_argument("--stopwords")
    a = p.parse_args()
    keep_n = None if a.keep_n == "none" else int(a.keep_n)
    stop = set()
    if a.stopwords:
        with open(a.stopwords, encoding="utf-8") as f:
            stop = {w.strip() for w in f if w.strip()}

    t0 = time.time()

    def texts():
        with open(a.docs, "rb") as f:  # binary: lines end at b"\n" only
            for line in f:
                tokens = simple_preprocess(line, deacc=a.deacc, min_len=a.min_len, max_len=a.max_len)
                yield [t for t in tokens if t not in stop]

    dct = Dictionary(texts())
    dct.filter_extremes(no_below=a.no_below, no_above=a.no_above, keep_n=keep_n)
    dct.save_as_text(a.prefix + "_wordids.txt")
    bow = (dct.doc2bow(t) for t in texts())
    MmCorpus.serialize(a.prefix + "_bow.mm", bow)
    tfidf = TfidfModel(dictionary=dct)
    MmCorpus.serialize(a.prefix + "_tfidf.mm", tfidf[MmCorpus(a.prefix + "_bow.mm")])
    elapsed = time.time() - t0
    for s in ("_bow.mm.index", "_tfidf.mm.index"):
        os.remove(a.prefix + s)
    print(f"{elapsed:.3f}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
