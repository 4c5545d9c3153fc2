"""LangChain integration: a document compressor and a retriever helper.

Needs ``langchain-core`` 0.3 or 1.x (``pip install "omnimemory[langchain]"``).
:func:`compression_retriever` also needs ``ContextualCompressionRetriever``, which lives in
``langchain-classic`` with LangChain 1.x and in ``langchain`` 0.3; either is found.

::

    from omnimemory.langchain import OmniMemoryCompressor, compression_retriever
    retriever = compression_retriever(my_retriever, api_key="om_pro_…", target_compression=0.5)
    docs = retriever.invoke("How tall is the Eiffel Tower?")
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Sequence, Type, cast

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import Document
    from langchain_core.documents.compressor import BaseDocumentCompressor
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field, PrivateAttr
except ImportError as e:  # pragma: no cover
    raise ImportError('omnimemory.langchain needs langchain-core: pip install "omnimemory[langchain]"') from e

from ._client import AsyncOmniMemory, OmniMemory
from ._integration import STAT_KEYS, blocking_client, compress_concurrently, request_kwargs, stats
from .models import CompressionResult

__all__ = [
    "OmniMemoryCompressor",
    "OmniMemoryDocumentCompressor",
    "compression_retriever",
    "contextual_compression_retriever_class",
    "STAT_KEYS",
]

class OmniMemoryCompressor(BaseDocumentCompressor):
    """Compresses each document's ``page_content`` with OmniMemory, query-aware.

    Every document keeps its ``metadata`` (and ``id``); the compressed ones get the
    :data:`STAT_KEYS` added (original and compressed token counts, ratio, quality score).
    Empty documents pass through without a request. One request per document; the async path
    sends them concurrently.

    Give either ``api_key`` / ``base_url`` (and the other client settings), or ready
    ``client`` / ``async_client`` instances.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    api_key: Optional[str] = Field(default=None, repr=False)
    base_url: Optional[str] = None
    target_compression: Optional[float] = None
    """Fraction of each document's tokens to remove (server default 0.944)."""
    target_tokens: Optional[int] = None
    """Absolute budget per document; wins over ``target_compression``."""
    model_id: Optional[str] = None
    granularity: Optional[str] = None
    use_query: bool = True
    """Send the retriever's query, for query-aware compression."""
    tags: Optional[Dict[str, str]] = None
    """``metadata`` tags stored with each usage record (cost allocation)."""
    timeout: float = 30.0
    max_retries: int = 0
    client: Optional[OmniMemory] = Field(default=None, exclude=True, repr=False)
    async_client: Optional[AsyncOmniMemory] = Field(default=None, exclude=True, repr=False)

    _own_client: Optional[OmniMemory] = PrivateAttr(default=None)

    @staticmethod
    def _rebuild(doc: Document, result: CompressionResult) -> Document:
        return Document(
            page_content=result.compressed_text,
            metadata={**doc.metadata, **stats(result)},
            id=getattr(doc, "id", None),
        )

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Optional[Callbacks] = None,
    ) -> Sequence[Document]:
        client = blocking_client(self)
        kwargs = request_kwargs(self, query)
        out: List[Document] = []
        for doc in documents:
            if not doc.page_content.strip():
                out.append(doc)
                continue
            out.append(self._rebuild(doc, client.compress(doc.page_content, **kwargs)))
        return out

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Optional[Callbacks] = None,
    ) -> Sequence[Document]:
        texts = [doc.page_content if doc.page_content.strip() else None for doc in documents]
        results = await compress_concurrently(self, texts, request_kwargs(self, query))
        return [doc if r is None else self._rebuild(doc, r) for doc, r in zip(documents, results)]


#: The original integration's name.
OmniMemoryDocumentCompressor = OmniMemoryCompressor


def contextual_compression_retriever_class() -> Type[BaseRetriever]:
    """``ContextualCompressionRetriever`` from ``langchain_classic`` (LangChain 1.x) or
    ``langchain.retrievers`` (LangChain 0.3), whichever is installed."""
    for module in ("langchain_classic.retrievers", "langchain.retrievers"):
        try:
            cls = getattr(importlib.import_module(module), "ContextualCompressionRetriever", None)
        except ImportError:
            continue
        if cls is not None:
            return cast(Type[BaseRetriever], cls)
    raise ImportError(
        "ContextualCompressionRetriever was not found: install `langchain-classic` (LangChain 1.x) "
        "or `langchain<1` (LangChain 0.3)"
    )


def compression_retriever(
    base_retriever: BaseRetriever,
    compressor: Optional[OmniMemoryCompressor] = None,
    **compressor_kwargs: Any,
) -> BaseRetriever:
    """Wraps ``base_retriever`` in a ``ContextualCompressionRetriever`` that compresses what it
    returns with ``compressor`` (or ``OmniMemoryCompressor(**compressor_kwargs)``)."""
    if compressor is None:
        compressor = OmniMemoryCompressor(**compressor_kwargs)
    elif compressor_kwargs:
        raise TypeError("give either a compressor or its settings, not both")
    cls = contextual_compression_retriever_class()
    return cls(base_compressor=compressor, base_retriever=base_retriever)  # type: ignore[call-arg]
