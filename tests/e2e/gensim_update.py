"""gensim's LdaModel.update continuing a model exported by topicd.

Usage: gensim_update.py MODEL_DIR DOCS_BEFORE CORPUS.mm OUT_DIR CHUNKSIZE PASSES UPDATE_EVERY
       ALPHA ETA

MODEL_DIR holds topicctl's `export --format npy` of the model to continue (lambda.npy,
alpha.npy, eta.npy); DOCS_BEFORE is the number of documents it was trained on (gensim's
num_updates and state.numdocs after that training); ALPHA and ETA are `auto` or `fixed`.
The model continued on CORPUS.mm is written to OUT_DIR as lambda.npy, alpha.npy, eta.npy.
With `eta = auto` gensim's `LdaState` keeps in lambda the eta it was created with
(`get_lambda` is `state.eta + sstats`) while `update_eta` replaces `model.eta`, and the next
E-step uses `expElogbeta` from before that update; topicd's lambda holds the eta learnt so
far, at once. That is a difference of every topicd job with `eta = auto`, not of continuing
a model, so here `state.eta` follows `model.eta` and the state is synced after each update.
The E-step is run to convergence (gamma_threshold 1e-12), so that the random start of a
document's gamma, which differs from topicd's, does not matter.
"""
import os
import sys

import numpy as np
from gensim.corpora import MmCorpus
from gensim.models import LdaModel
from gensim.models.ldamodel import LdaState

model_dir, docs_before, corpus_path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
chunksize, passes, update_every = (int(x) for x in sys.argv[5:8])
alpha_mode, eta_mode = sys.argv[8], sys.argv[9]

lam = np.load(os.path.join(model_dir, "lambda.npy"))
alpha = np.load(os.path.join(model_dir, "alpha.npy"))
eta = np.load(os.path.join(model_dir, "eta.npy"))
k, v = lam.shape

model = LdaModel(
    num_topics=k,
    id2word={i: str(i) for i in range(v)},
    alpha="auto" if alpha_mode == "auto" else alpha,
    eta="auto" if eta_mode == "auto" else eta,
    chunksize=chunksize,
    passes=passes,
    update_every=update_every,
    iterations=1000,
    gamma_threshold=1e-12,
    eval_every=0,
    random_state=1,
    dtype=np.float64,
)
# the state topicd's model ended in: lambda - eta, the priors, the update counter
model.alpha = alpha.copy()
model.eta = eta.copy()
model.state = LdaState(model.eta, (k, v), dtype=np.float64)
model.state.sstats = lam - eta
model.state.numdocs = docs_before
model.num_updates = docs_before
model.sync_state()


def update_eta_as_topicd(lambdat, rho, update_eta=model.update_eta):
    eta = update_eta(lambdat, rho)
    model.state.eta = model.eta
    model.sync_state()
    return eta


model.update_eta = update_eta_as_topicd
model.update(
    MmCorpus(corpus_path),
    chunksize=chunksize,
    passes=passes,
    update_every=update_every,
    iterations=1000,
    gamma_threshold=1e-12,
    eval_every=0,
)
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "lambda.npy"), model.state.get_lambda())
np.save(os.path.join(out, "alpha.npy"), np.asarray(model.alpha, dtype=np.float64))
np.save(os.path.join(out, "eta.npy"), np.asarray(model.eta, dtype=np.float64))
