"""rerank -- in-process cross-encoder reranking over librerank (no PyTorch, no remote code).

Replace the loading line of code written for jina-reranker-v2, sentence-transformers' CrossEncoder or
LangChain's cross-encoder interface, keep the rest::

    import rerank
    model = rerank.Reranker("jinaai/jina-reranker-v2-base-multilingual")   # or a model folder

    model.compute_score([[query, doc] for doc in documents], max_length=1024)   # jina: floats
    model.rerank(query, documents, max_query_length=512, max_length=1024, top_n=3)
    model.predict([(query, doc) for doc in documents])    # sentence-transformers: numpy array
    model.rank(query, documents, top_k=3, return_documents=True)
    model.score([(query, doc) for doc in documents])      # LangChain BaseCrossEncoder

A model name is resolved exactly as the `rerank` command line does: an existing folder is used as it
is; a Hugging Face repo id ("ORG/NAME", "ORG/NAME@REVISION") is taken from the Hugging Face cache
(HF_HOME, HF_HUB_CACHE) and downloaded on first use (HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 never
downloads), with progress on stderr.

Decoder rerankers (Qwen3-Reranker, mxbai-rerank-v2) and the listwise jina-reranker-v3 run through the
same methods: ``template=`` picks a decoder's prompt where the folder does not tell, and every scoring
method takes ``instruction=`` (the prompt's task instruction; encoders ignore it)::

    model = rerank.Reranker("Qwen/Qwen3-Reranker-0.6B")
    model.rerank(query, documents, instruction="Find passages about skin care")

The scoring work runs in C with the GIL released; one Reranker may be shared by several threads;
Ctrl-C stops a long call after the forward pass in flight (KeyboardInterrupt, the object stays
usable), even inside one call on one enormous document.
"""
import logging
import os
import sys

from . import _rerank
from ._rerank import DEFAULT_MODEL, __version__

__all__ = ["Reranker", "pull", "DEFAULT_MODEL", "__version__"]

logger = logging.getLogger(__name__)


def pull(repo_id, revision=None, *, quiet=False):
    """Download a model repository into the Hugging Face cache and return its snapshot folder.

    Fetches config.json, the tokenizer files and the safetensors weights (never pickle weights);
    files already in the cache are reused and interrupted downloads resume. ``repo_id`` may carry
    the revision ("ORG/NAME@v1"); otherwise ``revision`` (branch, tag or commit, default "main").
    Progress goes to stderr unless ``quiet``.

    Raises ConnectionError (an OSError) when the hub cannot be reached, FileNotFoundError for an
    unknown repository or revision, ValueError for a malformed repo id.
    """
    if not isinstance(repo_id, str):
        raise TypeError("repo_id must be a str, not %s" % type(repo_id).__name__)
    if revision is not None and not isinstance(revision, str):
        raise TypeError("revision must be a str or None, not %s" % type(revision).__name__)
    return _rerank.pull(repo_id, revision, bool(quiet))


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError("batch_size must be an int, not %s" % type(batch_size).__name__)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1, got %d" % batch_size)


def _is_single_pair(x):
    """A bare [query, document] (the first element is a str), as both libraries detect it."""
    return isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], str)


def _check_instruction(instruction):
    if instruction is not None and not isinstance(instruction, str):
        raise TypeError("instruction must be a str or None, not %s" % type(instruction).__name__)


def _check_top(value, name):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int or None, not %s" % (name, type(value).__name__))
    if value < 0:
        raise ValueError("%s must not be negative, got %d" % (name, value))


class _Progress:
    """A text progress bar on stderr, for show_progress_bar=True."""

    def __init__(self, desc):
        self.desc = desc
        self.shown = False

    def __call__(self, done, total):
        width = 30
        fill = width * done // total if total else width
        sys.stderr.write("\r%s: %3d%% |%s%s| %d/%d" % (self.desc, 100 * done // total if total else 100,
                                                       "#" * fill, " " * (width - fill), done, total))
        sys.stderr.flush()
        self.shown = True

    def close(self):
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


class Reranker:
    """A cross-encoder reranker loaded in process.

    model
        A model folder (config.json, model.safetensors, tokenizer.json) or a Hugging Face repo id;
        default "jinaai/jina-reranker-v2-base-multilingual". Repo ids come from the Hugging Face
        cache and are downloaded on first use, as the `rerank` command does.
    precision
        "auto" (the fastest the CPU supports: bf16 where it has AVX512_BF16, else fp32), "fp32"
        (exact: within 1e-4 of a float64 reference), "bf16" or "int8".
    threads
        Threads of one forward pass (default: every core).
    max_batch_tokens
        Token rows of one packed forward pass (default 1024, never below the model's length).
    revision
        Branch, tag or commit of a repo id.
    template
        Decoder rerankers only: the prompt, "qwen3-reranker" or "mxbai-rerank-v2" (the CLI's
        ``--template``). Default None: the model card in the folder (README.md naming
        Qwen3-Reranker or mxbai-rerank), else the architecture (Qwen3 gets the Qwen3-Reranker
        prompt); a decoder folder neither identifies is refused. An encoder refuses a template.

    Methods, with the names, defaults and return shapes of the libraries they stand in for:

    - jina-reranker-v2: ``compute_score(sentence_pairs, batch_size=32, max_length=None)`` and
      ``rerank(query, documents, batch_size=32, max_length=1024, max_query_length=512,
      overlap_tokens=80, top_n=None)``.
    - sentence-transformers CrossEncoder: ``predict(sentences, ...)`` and ``rank(query, documents,
      top_k=None, return_documents=False, ...)``.
    - LangChain BaseCrossEncoder: ``score(text_pairs)``.
    - ``tokenize(text, text_pair=None, max_length=None)`` and the ``info`` dict.

    Scores are sigmoids of the model's logit unless a method says otherwise. Decoder rerankers
    (Qwen3-Reranker, mxbai-rerank-v2) score their own prompt: sigmoid(l_yes - l_no), or of
    l("1") - l("0"). Every scoring method takes the keyword ``instruction`` (None: the prompt's
    default task instruction; encoders ignore it).

    jina-reranker-v3 is listwise: it reads a query with up to 125 documents in one prompt, and a
    document's score (a cosine in [-1, 1], never a sigmoid) depends on the other documents of its
    request. ``rerank`` and ``rank`` score their documents as one request (``rerank rank``); the pair
    methods (``compute_score``, ``predict``, ``score``) make the pairs that share a query one request
    of their documents in pair order, so ``predict([(q, d) for d in docs])`` equals ``rerank(q, docs)``
    and a single pair is a request of one document. ``batch_size`` is
    accepted everywhere for compatibility and ignored: rerank packs pairs into forward passes by
    tokens, without padding, so results never depend on how they are batched.

    One Reranker may be used from several threads at once: each call borrows its own scoring
    context (scratch memory and worker threads) and the model weights are shared.
    """

    def __init__(self, model=None, *, precision="auto", threads=None, max_batch_tokens=None, revision=None,
                 template=None):
        if model is not None:
            model = os.fspath(model)
            if not isinstance(model, str):
                raise TypeError("model must be a str or a path, not bytes")
        if revision is not None and not isinstance(revision, str):
            raise TypeError("revision must be a str or None, not %s" % type(revision).__name__)
        if not isinstance(precision, str):
            raise TypeError("precision must be a str, not %s" % type(precision).__name__)
        if template is not None and not isinstance(template, str):
            raise TypeError("template must be a str or None, not %s" % type(template).__name__)
        self.model_dir = _rerank.resolve(model, revision)
        self._model = _rerank._Model(self.model_dir, precision, threads, max_batch_tokens, template)
        self._encoder = self._model.info()["template"] == "none"
        self.name_or_path = model if model else DEFAULT_MODEL

    def __repr__(self):
        i = self._model.info()
        return "Reranker(%r, precision=%r, kernels=%r)" % (self.name_or_path, i["precision"], i["kernels"])

    # -------------------------------------------------------------------------------------- info

    @property
    def info(self):
        """A dict describing the loaded model: family ("jina_v2", "xlmr", "bert", "jina_v1",
        "mgte", "modernbert"; decoders "qwen3", "qwen2", "qwen3_cls"; "jina_v3"), template (the
        prompt: "none" for encoders, "qwen3-reranker", "mxbai-rerank-v2", "jina-reranker-v3"),
        default_instruction (or None), listwise, precision in use, kernels, sizes (n_layers,
        hidden, n_heads, n_kv_heads, head_dim, intermediate, vocab_size, max_length, embed_size,
        ...), weight_bytes, threads, max_batch_tokens, model_dir."""
        return self._model.info()

    def tokenize(self, text, text_pair=None, max_length=None):
        """Token ids the model sees for ``text`` (and ``text_pair``), special tokens included.

        Returns ``(ids, type_ids)``, two lists of ints, as Hugging Face tokenizers gives
        ``input_ids`` / ``token_type_ids``. With ``max_length`` the pair is truncated
        ``longest_first`` to that many tokens; without it nothing is cut.
        """
        return self._model.tokenize(text, text_pair, max_length)

    # ------------------------------------------------------------------------ jina-reranker-v2

    def compute_score(self, sentence_pairs, batch_size=32, max_length=None, *, instruction=None):
        """Relevance of [query, document] pairs, as jina-reranker-v2's ``compute_score``.

        ``sentence_pairs`` is one pair ``[query, document]`` or a list of pairs (lists or tuples).
        Each pair is tokenized with the model's pair template and truncated ``longest_first`` to
        ``max_length`` tokens (default: the tokenizer's model_max_length, 1024 for
        jina-reranker-v2). Returns the sigmoid of each pair's logit: a list of floats, or a bare
        float when there is exactly one pair (as jina does). ``batch_size`` is accepted and ignored.

        Decoder rerankers: each pair becomes the model's prompt, with ``instruction`` (None: the
        template's default) and ``max_length`` (default 8192) as ``rerank score`` builds it.
        jina-reranker-v3: the pairs that share a query are ranked as one listwise request (see the
        class docstring); ``max_length`` is then the block length, and scores are cosines.
        """
        _check_batch_size(batch_size)
        _check_instruction(instruction)
        pairs = [sentence_pairs] if _is_single_pair(sentence_pairs) else sentence_pairs
        scores = self._model.score_pairs(pairs, max_length, instruction=instruction)
        return scores[0] if len(scores) == 1 else scores

    def rerank(self, query, documents, batch_size=32, max_length=None, max_query_length=512, overlap_tokens=80,
               top_n=None, *, instruction=None, **kwargs):
        """Rank ``documents`` for ``query``, as jina-reranker-v2's ``rerank``.

        The query is cut to ``max_query_length`` tokens (at most half of ``max_length``); each
        document is tokenized alone and, when longer than the room one ``max_length`` pair leaves,
        split into windows overlapping by ``overlap_tokens`` (at most a quarter of a window); a
        document scores its best window. ``max_length`` None means 1024 for encoders (jina's
        default) and the model's own for decoder rerankers and jina-reranker-v3. Returns
        ``[{"document", "relevance_score", "index"}]`` best first, ``top_n`` of them (None or 0:
        all). Unlike jina's code, empty documents are valid (they score the pair with an empty
        document) and ties go to the lower index. ``overlap=`` (the name jina's README uses) is
        accepted as ``overlap_tokens``. The same as ``rerank rank`` with these options.

        Decoder rerankers: each document becomes one prompt (cut as the reference code cuts it, no
        windows) with ``instruction`` (None: the template's default). jina-reranker-v3: the
        documents go into listwise blocks of up to 125 as its own ``rerank()`` makes them; the
        relevance score is a cosine in [-1, 1] that depends on the other documents, and
        ``instruction`` fills the prompt's optional instruction slot.
        """
        _check_batch_size(batch_size)
        _check_instruction(instruction)
        if "overlap" in kwargs:
            overlap_tokens = kwargs.pop("overlap")
        if kwargs:
            raise TypeError("rerank() got an unexpected keyword argument %r" % next(iter(kwargs)))
        _check_top(top_n, "top_n")
        if max_length is None and self._encoder:
            max_length = 1024
        results, _ = self._model.rank(query, documents, max_length, max_query_length, overlap_tokens, top_n,
                                      instruction=instruction)
        return [{"document": documents[i], "relevance_score": s, "index": i} for i, s in results]

    # -------------------------------------------------------------- sentence-transformers

    def predict(self, sentences, batch_size=32, show_progress_bar=None, activation_fn=None, apply_softmax=False,
                convert_to_numpy=True, convert_to_tensor=False, *, max_length=None, num_workers=None,
                activation_fct=None, instruction=None):
        """Scores of sentence pairs, as sentence-transformers' ``CrossEncoder.predict``.

        ``sentences`` is one pair ``(query, document)`` or a list of pairs. With the defaults the
        result is a float32 numpy array of sigmoid scores (sentence-transformers' default for a
        one-label model), or one numpy float32 for a single pair. ``activation_fn`` replaces the
        sigmoid: it gets the raw logits (a numpy array, or a torch tensor when it is a torch
        module such as ``torch.nn.Identity()``). ``apply_softmax`` has nothing to act on with one
        label, as in sentence-transformers. ``convert_to_tensor=True`` returns a torch tensor (needs
        PyTorch); ``convert_to_numpy=False`` returns plain floats.

        jina-reranker-v2 also names its ``compute_score`` "predict". The two disagree only on the
        return type, and the keyword decides: ``convert_to_numpy=False`` gives jina's shape (a
        list of Python floats, a bare float for one pair); the default gives sentence-transformers'
        numpy array. ``max_length`` (jina's keyword) truncates pairs as in ``compute_score``.
        Older sentence-transformers keywords are accepted: ``activation_fct`` (the former name of
        ``activation_fn``) and ``num_workers`` (ignored). ``show_progress_bar=True`` draws a bar on stderr (None: when the "rerank" logger's level is INFO
        or DEBUG, as sentence-transformers decides); ``batch_size`` is accepted and ignored.
        ``instruction`` is a decoder prompt's task instruction, as in ``compute_score``; on
        jina-reranker-v3 the pairs that share a query are one listwise request (class docstring)
        and ``activation_fn`` gets the cosines.
        """
        _check_batch_size(batch_size)
        _check_instruction(instruction)
        if activation_fct is not None:  # sentence-transformers 2.x/3.x name
            activation_fn = activation_fct if activation_fn is None else activation_fn
        single = _is_single_pair(sentences)
        pairs = [sentences] if single else sentences
        if show_progress_bar is None:  # sentence-transformers: shown when its logger says INFO or DEBUG
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        progress = _Progress("Batches") if show_progress_bar else None
        try:
            scores = self._model.score_pairs(pairs, max_length, activation_fn is not None, progress, instruction)
        finally:
            if progress:
                progress.close()
        if activation_fn is not None:
            scores = _apply_activation(activation_fn, scores)
        if convert_to_tensor:
            try:
                import torch
            except ImportError as e:
                raise ImportError("convert_to_tensor=True needs PyTorch; use convert_to_numpy instead") from e
            out = torch.tensor(scores, dtype=torch.float32)
        elif convert_to_numpy:
            import numpy as np
            out = np.asarray(scores, dtype=np.float32)
        else:
            out = [float(s) for s in scores]
        return out[0] if single else out

    def rank(self, query, documents, top_k=None, return_documents=False, batch_size=32, show_progress_bar=None,
             activation_fn=None, apply_softmax=False, convert_to_numpy=True, convert_to_tensor=False, *,
             instruction=None):
        """Rank ``documents`` for ``query``, as sentence-transformers' ``CrossEncoder.rank``.

        Every (query, document) pair is scored as ``predict`` scores it: truncated to the model's
        length, no windows (use ``rerank`` for jina's windowed long documents). Returns
        ``[{"corpus_id", "score"}]`` (plus ``"text"`` with ``return_documents=True``), best first,
        ties in document order, the first ``top_k`` (None: all). Scores are numpy float32 with the
        defaults, as sentence-transformers gives them. ``instruction``: as in ``predict``; on
        jina-reranker-v3 the documents are one listwise request, scored as ``rerank`` scores them.
        """
        if not isinstance(query, str):
            raise TypeError("query must be a str, not %s" % type(query).__name__)
        _check_top(top_k, "top_k")
        if isinstance(documents, (str, bytes, dict)) or not hasattr(documents, "__getitem__"):
            raise TypeError("documents must be a list of str, not %s" % type(documents).__name__)
        for i, d in enumerate(documents):
            if not isinstance(d, str):
                raise TypeError("document %d must be a str, not %s" % (i, type(d).__name__))
        scores = self.predict([[query, d] for d in documents], batch_size, show_progress_bar, activation_fn,
                              apply_softmax, convert_to_numpy, convert_to_tensor, instruction=instruction)
        results = []
        for i, s in enumerate(scores):
            r = {"corpus_id": i, "score": s}
            if return_documents:
                r["text"] = documents[i]
            results.append(r)
        results.sort(key=lambda r: r["score"], reverse=True)  # stable: ties keep document order
        return results[:top_k]

    # ------------------------------------------------------------------------------ LangChain

    def score(self, text_pairs, *, instruction=None):
        """Sigmoid scores of (query, document) pairs as a list of floats: LangChain's
        ``BaseCrossEncoder.score``, so a Reranker can be the ``model`` of LangChain's
        ``CrossEncoderReranker``. ``instruction`` and jina-reranker-v3 pairs: as in
        ``compute_score``."""
        _check_instruction(instruction)
        if _is_single_pair(text_pairs):
            raise TypeError("text_pairs must be a list of (query, document) pairs")
        return self._model.score_pairs(text_pairs, instruction=instruction)

    # ------------------------------------------------------- code written for transformers

    def to(self, *args, **kwargs):
        """Returns self: rerank runs on the CPU, and ``model.to(device)`` lines written for
        transformers keep working."""
        return self

    def eval(self):
        """Returns self (the model is always in inference mode)."""
        return self


def _apply_activation(fn, logits):
    """sentence-transformers' activation_fn on raw logits: torch modules get a tensor, anything else a
    numpy array."""
    if type(fn).__module__.split(".")[0] == "torch":
        import torch
        return [float(x) for x in fn(torch.tensor(logits, dtype=torch.float32)).reshape(-1).tolist()]
    import numpy as np
    return [float(x) for x in np.asarray(fn(np.asarray(logits, dtype=np.float32)), dtype=np.float32).reshape(-1)]
