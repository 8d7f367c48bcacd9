#!/usr/bin/env python3
"""Generate the small corpus bundled with topicd (examples/planted.*): documents drawn from
eight planted topics of real English words, written the way gensim writes a TF-IDF corpus
(Matrix Market, 1-based, rows are documents; log2 idf, L2-normalised) with its dictionary
(gensim Dictionary text format). Everything here is generated, so the files are public domain.

    python3 examples/make_planted.py examples   # writes planted_tfidf.mm.gz, planted_bow.mm.gz, planted_wordids.txt
"""
import gzip, math, os, random, sys

TOPICS = {
    "astronomy": "star planet orbit telescope galaxy comet moon solar nebula astronomer eclipse meteor cosmic gravity universe",
    "cooking": "recipe oven flour butter sugar bake dough sauce garlic onion simmer kitchen salt pepper roast",
    "sailing": "ship sail harbour captain crew mast anchor wind tide voyage deck storm port hull navigator",
    "music": "song melody guitar piano rhythm chord concert singer orchestra violin drum tempo harmony composer album",
    "medicine": "patient doctor disease hospital treatment symptom nurse surgery vaccine fever diagnosis medicine clinic infection therapy",
    "farming": "farm crop harvest soil wheat cattle barn tractor plough seed field farmer orchard irrigation livestock",
    "law": "court judge lawyer trial jury verdict law evidence witness appeal contract defendant statute justice attorney",
    "computing": "computer software program algorithm data network server code memory processor database compiler internet user system",
}
COMMON = "time year people way day man thing woman life child world school state family group country problem hand part place".split()


def main(out):
    rng = random.Random(20261126)
    names = sorted(TOPICS)
    docs = []
    for _ in range(3000):
        main_topic = rng.choice(names)
        other = rng.choice(names)
        words = []
        for _ in range(rng.randint(15, 60)):
            r = rng.random()
            if r < 0.65:
                words.append(rng.choice(TOPICS[main_topic].split()))
            elif r < 0.85:
                words.append(rng.choice(TOPICS[other].split()))
            else:
                words.append(rng.choice(COMMON))
        docs.append(words)
    vocab = sorted({w for d in docs for w in d})
    ids = {w: i for i, w in enumerate(vocab)}
    df = {w: 0 for w in vocab}
    for d in docs:
        for w in set(d):
            df[w] += 1
    bows = []
    for d in docs:
        counts = {}
        for w in d:
            counts[ids[w]] = counts.get(ids[w], 0) + 1
        bows.append(sorted(counts.items()))
    n = len(docs)
    idf = {ids[w]: math.log2(n / df[w]) for w in vocab}
    tfidf = []
    for bow in bows:
        vec = [(t, c * idf[t]) for t, c in bow if abs(idf[t]) > 1e-12]
        norm = math.sqrt(sum(v * v for _, v in vec))
        tfidf.append([(t, v / norm) for t, v in vec] if norm > 0 else [])
    for name, rows in (("planted_bow.mm.gz", bows), ("planted_tfidf.mm.gz", tfidf)):
        nnz = sum(len(r) for r in rows)
        with gzip.GzipFile(os.path.join(out, name), "wb", mtime=0) as f:
            f.write(b"%%MatrixMarket matrix coordinate real general\n")
            f.write(("%d %d %d" % (n, len(vocab), nnz)).ljust(50).encode() + b"\n")
            for docno, row in enumerate(rows, 1):
                for t, v in row:
                    f.write(("%d %d %s\n" % (docno, t + 1, repr(float(v)) if isinstance(v, float) else v)).encode())
    with open(os.path.join(out, "planted_wordids.txt"), "w") as f:
        f.write("%d\n" % n)
        for w in vocab:
            f.write("%d\t%s\t%d\n" % (ids[w], w, df[w]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
