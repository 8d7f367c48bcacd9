"""Hand topicd models to gensim and back.

topicd's ``topicctl export N --format npy --out DIR`` writes a model's arrays as .npy files
beside the dictionary in gensim's text format; this module turns such a directory into a
ready gensim model, and writes a gensim model in the same layout for ``topicctl import DIR``::

    import sys; sys.path.insert(0, "/usr/share/topicd/python")   # where the package puts it
    import topicd_gensim
    lda = topicd_gensim.load("model/")   # an LdaModel (or an LsiModel), ready for lda[bow]

The layout of DIR (every array little-endian float64, C order; written and read with numpy,
never pickled):

=================  =====================================================================
``u.npy``          LSI: U, ``num_terms x num_topics`` (gensim's ``projection.u``)
``s.npy``          LSI: the singular values, ``num_topics`` (``projection.s``)
``lambda.npy``     LDA: lambda, ``num_topics x num_terms`` (``state.get_lambda()``)
``alpha.npy``      LDA: alpha, ``num_topics``
``eta.npy``        LDA: eta, ``num_terms``
``dictionary.txt`` gensim's ``Dictionary.save_as_text`` format, ids ascending
``model.json``     optional: ``kind``, ``num_terms``, ``num_topics``, ``num_docs`` and, as
                   :func:`save` writes it, ``num_updates`` and ``params`` (the model's
                   parameters by their gensim names; ``"alpha": "auto"`` and ``"eta":
                   "auto"`` when they are learned)
=================  =====================================================================

``topicctl export --format json`` writes a ``model.json`` with the shape and ``num_docs``
into the same directory when asked; without one, :func:`load` takes gensim's defaults.

This module needs only numpy and gensim.
"""

import json
import math
import os

import numpy as np
from gensim.corpora import Dictionary
from gensim.models import LdaModel, LsiModel

__all__ = ["load", "save", "LDA_PARAMS", "LSI_PARAMS"]

#: The LdaModel parameters :func:`save` records and :func:`load` restores (gensim's names).
LDA_PARAMS = (
    "chunksize",
    "passes",
    "update_every",
    "decay",
    "offset",
    "iterations",
    "gamma_threshold",
    "eval_every",
    "minimum_probability",
)

#: The LsiModel parameters :func:`save` records and :func:`load` restores (gensim's names).
LSI_PARAMS = ("chunksize", "decay", "onepass", "power_iters", "extra_samples")


def load(directory, **params):
    """Load the model in ``directory`` as a gensim ``LdaModel`` or ``LsiModel``.

    The kind is told by the files: ``lambda.npy`` (with ``alpha.npy`` and ``eta.npy``) makes
    an LdaModel, ``u.npy`` (with ``s.npy``) an LsiModel; ``dictionary.txt`` becomes its
    ``id2word``. ``params`` (gensim's keyword arguments, e.g. ``iterations=100``) override those
    of ``model.json``, which override gensim's defaults.

    The LdaModel is in float64; its ``state.sstats`` is lambda - eta, its ``num_updates`` and
    ``state.numdocs`` come from ``model.json`` (``num_updates``, else ``num_docs``: one pass),
    so that ``update()`` continues with the learning rate where training left it (and goes on
    learning alpha or eta when ``params`` says ``"auto"``): saved and loaded, a model updates
    as the original does from the same random state, to rounding (the file holds lambda, and
    ``(eta + sstats) - eta`` may differ from ``sstats`` in its last bit). The
    LsiModel's projection is (U, s); ``docs_processed`` is ``num_docs``.

    Raises ``ValueError`` saying what is wrong when a file is missing, an array has the wrong
    type or shape, or the shapes disagree with each other or with the dictionary.
    """
    meta = _read_meta(directory)
    dictionary = _read_dictionary(directory)
    has = lambda name: os.path.exists(os.path.join(directory, name))  # noqa: E731
    if has("lambda.npy"):
        return _load_lda(directory, dictionary, meta, params)
    if has("u.npy"):
        return _load_lsi(directory, dictionary, meta, params)
    raise ValueError(
        f"{directory} holds neither lambda.npy (LDA) nor u.npy (LSI): "
        "write it with `topicctl export N --format npy --out DIR` or topicd_gensim.save"
    )


def save(model, directory):
    """Write a gensim ``LdaModel`` or ``LsiModel`` into ``directory`` in topicd's export
    layout (see the module's documentation), for ``topicctl import DIR``.

    The directory is created if needed; files of the same names are replaced. The model must
    have an ``id2word`` (a ``Dictionary`` or a dict of id to token) covering ids up to its
    number of terms; an LdaModel's eta must be one value per term (a ``num_topics x
    num_terms`` eta that is not the same for every topic has no topicd equivalent).
    Returns the paths written.
    """
    os.makedirs(directory, exist_ok=True)
    if isinstance(model, LdaModel):
        written = _save_lda(model, directory)
    elif isinstance(model, LsiModel):
        written = _save_lsi(model, directory)
    else:
        raise TypeError(f"save takes an LdaModel or an LsiModel, not {type(model).__name__}")
    written.append(_write_dictionary(model.id2word, model.num_terms, directory))
    return written


# --- loading ------------------------------------------------------------------------------


def _read_meta(directory):
    path = os.path.join(directory, "model.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return meta


def _read_dictionary(directory):
    path = os.path.join(directory, "dictionary.txt")
    if not os.path.exists(path):
        raise ValueError(f"{path} is missing: the model's words are in it")
    return Dictionary.load_from_text(path)


def _read_array(directory, name, ndim):
    """``directory/name``: a float64 array of ``ndim`` dimensions, read without pickle."""
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        raise ValueError(f"{path} is missing")
    array = np.load(path, allow_pickle=False)
    if array.dtype != np.float64 or array.ndim != ndim:
        raise ValueError(
            f"{path}: expected a {ndim}-D float64 array, found {array.ndim}-D {array.dtype}"
        )
    return np.ascontiguousarray(array)


def _check_terms(dictionary, num_terms, what):
    terms = 1 + max(dictionary.keys()) if len(dictionary) else 0
    if terms != num_terms:
        raise ValueError(
            f"dictionary.txt has ids up to {terms - 1} ({terms} terms) but {what} has "
            f"{num_terms} terms"
        )


def _model_params(meta, names, params):
    chosen = {k: v for k, v in (meta.get("params") or {}).items() if k in names}
    chosen.update(params)
    return chosen


def _load_lda(directory, dictionary, meta, params):
    lam = _read_array(directory, "lambda.npy", 2)
    alpha = _read_array(directory, "alpha.npy", 1)
    eta = _read_array(directory, "eta.npy", 1)
    num_topics, num_terms = lam.shape
    if alpha.shape != (num_topics,) or eta.shape != (num_terms,):
        raise ValueError(
            f"lambda.npy is {num_topics} x {num_terms}: alpha.npy must have {num_topics} "
            f"values (it has {alpha.size}) and eta.npy {num_terms} (it has {eta.size})"
        )
    _check_terms(dictionary, num_terms, "lambda.npy")
    kwargs = _model_params(meta, LDA_PARAMS, params)
    model = LdaModel(
        num_topics=num_topics,
        id2word=dictionary,
        alpha=alpha,
        eta=eta,
        dtype=np.float64,
        **kwargs,
    )
    # alpha and eta go on being learned when they were ("auto" in model.json's params)
    learned = meta.get("params") or {}
    model.optimize_alpha = learned.get("alpha") == "auto"
    model.optimize_eta = learned.get("eta") == "auto"
    model.state.sstats = lam - eta
    num_docs = int(meta.get("num_docs") or 0)
    model.state.numdocs = num_docs
    model.num_updates = int(meta.get("num_updates", num_docs))
    model.sync_state()
    return model


def _load_lsi(directory, dictionary, meta, params):
    u = _read_array(directory, "u.npy", 2)
    s = _read_array(directory, "s.npy", 1)
    num_terms, num_topics = u.shape
    if s.shape != (num_topics,):
        raise ValueError(
            f"u.npy is {num_terms} x {num_topics}: s.npy must have {num_topics} values "
            f"(it has {s.size})"
        )
    _check_terms(dictionary, num_terms, "u.npy")
    kwargs = _model_params(meta, LSI_PARAMS, params)
    model = LsiModel(num_topics=num_topics, id2word=dictionary, dtype=np.float64, **kwargs)
    model.projection.u = u
    model.projection.s = s
    model.projection.k = num_topics
    model.docs_processed = int(meta.get("num_docs") or 0)
    return model


# --- saving -------------------------------------------------------------------------------


def _atomic(path, mode, write):
    """Write ``path`` through a temporary file renamed over it: a reader sees the old file or
    the whole new one; nothing is left behind when ``write`` raises."""
    tmp = path + ".tmp"
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _write_array(directory, name, array):
    array = np.ascontiguousarray(array, dtype="<f8")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: the model holds values that are not finite numbers")
    return _atomic(
        os.path.join(directory, name), "wb", lambda f: np.save(f, array, allow_pickle=False)
    )


def _write_json(directory, document):
    def write(f):
        json.dump(document, f, indent=2)
        f.write("\n")

    return _atomic(os.path.join(directory, "model.json"), "w", write)


def _plain(value):
    """A parameter as JSON holds it (numpy scalars to Python numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _save_lda(model, directory):
    lam = np.asarray(model.state.get_lambda(), dtype=np.float64)
    eta = np.asarray(model.eta, dtype=np.float64)
    if eta.ndim == 2:
        if not np.all(eta == eta[0]):
            raise ValueError(
                "the model's eta differs from topic to topic: topicd keeps one eta per term"
            )
        eta = eta[0]
    eta = np.broadcast_to(eta, (model.num_terms,))
    params = {name: _plain(getattr(model, name)) for name in LDA_PARAMS}
    for prior in ("alpha", "eta"):
        if getattr(model, "optimize_" + prior, False):
            params[prior] = "auto"
    document = {
        "kind": "lda",
        "num_terms": int(model.num_terms),
        "num_topics": int(model.num_topics),
        "num_docs": int(model.state.numdocs),
        "num_updates": int(model.num_updates),
        "params": params,
    }
    return [
        _write_array(directory, "lambda.npy", lam),
        _write_array(directory, "alpha.npy", np.asarray(model.alpha, dtype=np.float64)),
        _write_array(directory, "eta.npy", eta),
        _write_json(directory, document),
    ]


def _save_lsi(model, directory):
    u = np.asarray(model.projection.u, dtype=np.float64)
    s = np.asarray(model.projection.s, dtype=np.float64)
    k = min(int(model.num_topics), s.size)
    params = {name: _plain(getattr(model, name)) for name in LSI_PARAMS}
    document = {
        "kind": "lsi",
        "num_terms": int(model.num_terms),
        "num_topics": k,
        "num_docs": int(model.docs_processed),
        "params": params,
    }
    return [
        _write_array(directory, "u.npy", u[:, :k]),
        _write_array(directory, "s.npy", s[:k]),
        _write_json(directory, document),
    ]


def _write_dictionary(id2word, num_terms, directory):
    """``dictionary.txt``: the document count when known, then ``id<TAB>token<TAB>df`` by
    ascending id (what topicd and ``Dictionary.load_from_text`` read)."""
    if id2word is None or len(id2word) == 0:
        raise ValueError("the model has no id2word: topicd needs the words of its terms")
    ids = sorted(id2word.keys())
    if ids[-1] >= num_terms:
        raise ValueError(f"id2word has id {ids[-1]} but the model has {num_terms} terms")
    dfs = getattr(id2word, "dfs", {}) or {}
    num_docs = getattr(id2word, "num_docs", None)

    def write(f):
        if num_docs is not None and not (isinstance(num_docs, float) and math.isnan(num_docs)):
            f.write(f"{int(num_docs)}\n")
        for i in ids:
            token = str(id2word[i])
            if any(c in token for c in "\t\n\r"):
                raise ValueError(
                    f"the token of id {i} holds a tab or a line break, which gensim's text "
                    "format cannot hold"
                )
            f.write(f"{i}\t{token}\t{int(dfs.get(i, 0))}\n")

    return _atomic(os.path.join(directory, "dictionary.txt"), "w", write)
