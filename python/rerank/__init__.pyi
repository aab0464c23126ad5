# Type stubs of the rerank package (see rerank/__init__.py for the documentation).
import os
from typing import Any, Callable, Literal, Sequence, TypedDict, overload

import numpy as np

__version__: str
DEFAULT_MODEL: str

Pair = Sequence[str]  # [query, document] or (query, document)

class JinaResult(TypedDict):
    document: str
    relevance_score: float
    index: int

class _RankResultBase(TypedDict):
    corpus_id: int
    score: Any  # numpy.float32 by default, float with convert_to_numpy=False

class RankResult(_RankResultBase, total=False):
    text: str

def pull(repo_id: str, revision: str | None = ..., *, quiet: bool = ...) -> str: ...

class Reranker:
    model_dir: str
    name_or_path: str
    def __init__(
        self,
        model: str | os.PathLike[str] | None = ...,
        *,
        precision: Literal["auto", "fp32", "bf16", "int8"] = ...,
        threads: int | None = ...,
        max_batch_tokens: int | None = ...,
        revision: str | None = ...,
        template: Literal["qwen3-reranker", "mxbai-rerank-v2", "auto"] | None = ...,
    ) -> None: ...
    @property
    def info(self) -> dict[str, Any]: ...
    def tokenize(self, text: str, text_pair: str | None = ..., max_length: int | None = ...) -> tuple[list[int], list[int]]: ...
    # jina-reranker-v2
    @overload
    def compute_score(self, sentence_pairs: tuple[str, str] | list[str], batch_size: int = ..., max_length: int | None = ...,
                      *, instruction: str | None = ...) -> float: ...
    @overload
    def compute_score(self, sentence_pairs: Sequence[Pair], batch_size: int = ..., max_length: int | None = ...,
                      *, instruction: str | None = ...) -> list[float] | float: ...
    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        batch_size: int = ...,
        max_length: int | None = ...,
        max_query_length: int = ...,
        overlap_tokens: int = ...,
        top_n: int | None = ...,
        *,
        instruction: str | None = ...,
        overlap: int = ...,
    ) -> list[JinaResult]: ...
    # sentence-transformers CrossEncoder
    @overload
    def predict(
        self,
        sentences: Sequence[Pair],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        activation_fn: Callable[..., Any] | None = ...,
        apply_softmax: bool | None = ...,
        convert_to_numpy: Literal[True] = ...,
        convert_to_tensor: Literal[False] = ...,
        *,
        max_length: int | None = ...,
        num_workers: int | None = ...,
        activation_fct: Callable[..., Any] | None = ...,
        instruction: str | None = ...,
    ) -> np.ndarray: ...
    @overload
    def predict(
        self,
        sentences: Sequence[Pair],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        activation_fn: Callable[..., Any] | None = ...,
        apply_softmax: bool | None = ...,
        convert_to_numpy: bool = ...,
        convert_to_tensor: bool = ...,
        *,
        max_length: int | None = ...,
        num_workers: int | None = ...,
        activation_fct: Callable[..., Any] | None = ...,
        instruction: str | None = ...,
    ) -> Any: ...
    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = ...,
        return_documents: bool = ...,
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        activation_fn: Callable[..., Any] | None = ...,
        apply_softmax: bool = ...,
        convert_to_numpy: bool = ...,
        convert_to_tensor: bool = ...,
        *,
        instruction: str | None = ...,
    ) -> list[RankResult]: ...
    # LangChain BaseCrossEncoder
    def score(self, text_pairs: Sequence[Pair], *, instruction: str | None = ...) -> list[float]: ...
    # code written for transformers
    def to(self, *args: Any, **kwargs: Any) -> Reranker: ...
    def eval(self) -> Reranker: ...
