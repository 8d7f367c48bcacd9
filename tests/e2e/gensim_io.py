"""gensim's side of tests/e2e/gensim_io.rs: topicd_gensim against topicd's own answers.

    gensim_io.py load DIR CORPUS ITERATIONS GAMMA_THRESHOLD
        load an export directory with topicd_gensim.load and print gensim's answers on CORPUS
    gensim_io.py train KIND CORPUS DICTIONARY DIR ITERATIONS GAMMA_THRESHOLD
        train a gensim model on CORPUS (KIND lsi: LsiModel; lda: LdaModel, 2 passes, seed 1),
        save it into DIR with topicd_gensim.save and print its answers on CORPUS
    gensim_io.py roundtrip CORPUS DICTIONARY DIR
        save and load an LdaModel and update both: see roundtrip()

The answers, one JSON object on stdout: ``kind``; ``weights``, each document's dense topic
vector (LSI: lsi[doc]; LDA: gamma / sum(gamma) from ``inference``, i.e. get_document_topics
before the minimum_probability cut); LDA also ``log_perplexity`` (of the whole CORPUS as one
chunk) and ``topics`` (the top 3 words of each topic, by ``show_topic``).
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import topicd_gensim  # noqa: E402
from gensim.corpora import Dictionary, MmCorpus  # noqa: E402
from gensim.models import LdaModel, LsiModel  # noqa: E402


def answers(model, corpus):
    docs = list(corpus)
    if isinstance(model, LsiModel):
        k = model.num_topics
        weights = []
        for doc in docs:
            dense = [0.0] * k
            for topic, weight in model[doc]:
                dense[topic] = float(weight)
            weights.append(dense)
        return {"kind": "lsi", "weights": weights}
    gamma, _ = model.inference(docs)
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    topics = [
        [word for word, _ in model.show_topic(k, topn=3)] for k in range(model.num_topics)
    ]
    return {
        "kind": "lda",
        "weights": theta.tolist(),
        "log_perplexity": float(model.log_perplexity(docs)),
        "topics": topics,
    }


def roundtrip(corpus, dictionary, directory):
    """An LdaModel trained on the first half of CORPUS, saved and loaded, then both updated
    with the second half from the same random state: the two must agree, which needs the
    learning rate's bookkeeping (num_updates, numdocs, decay, offset, chunksize) carried
    over. Answers the largest differences of lambda and alpha."""
    docs = list(MmCorpus(corpus))
    half = len(docs) // 2
    model = LdaModel(
        docs[:half],
        num_topics=4,
        id2word=Dictionary.load_from_text(dictionary),
        chunksize=300,
        passes=1,
        alpha="auto",
        random_state=3,
        dtype=np.float64,
    )
    topicd_gensim.save(model, directory)
    loaded = topicd_gensim.load(directory)
    for m in (model, loaded):
        m.random_state = np.random.RandomState(11)
        m.update(docs[half:])
    return {
        "num_updates": [model.num_updates, loaded.num_updates],
        "lambda": float(np.abs(model.state.get_lambda() - loaded.state.get_lambda()).max()),
        "alpha": float(np.abs(model.alpha - loaded.alpha).max()),
    }


def main(argv):
    if argv[0] == "roundtrip":
        print(json.dumps(roundtrip(*argv[1:])))
        return
    if argv[0] == "load":
        directory, corpus, iterations, threshold = argv[1:]
        lda = os.path.exists(os.path.join(directory, "lambda.npy"))
        e_step = {"iterations": int(iterations), "gamma_threshold": float(threshold)}
        model = topicd_gensim.load(directory, **(e_step if lda else {}))
    elif argv[0] == "train":
        kind, corpus, dictionary, directory, iterations, threshold = argv[1:]
        id2word = Dictionary.load_from_text(dictionary)
        train = MmCorpus(corpus)
        if kind == "lsi":
            model = LsiModel(train, num_topics=4, id2word=id2word, random_seed=1)
        else:
            model = LdaModel(
                train,
                num_topics=4,
                id2word=id2word,
                passes=2,
                chunksize=500,
                alpha="auto",
                random_state=1,
                dtype=np.float64,
                iterations=int(iterations),
                gamma_threshold=float(threshold),
            )
        topicd_gensim.save(model, directory)
    else:
        raise SystemExit(f"unknown command {argv[0]}")
    print(json.dumps(answers(model, MmCorpus(corpus))))


if __name__ == "__main__":
    main(sys.argv[1:])
