"""The LangChain compressor inside a ContextualCompressionRetriever, against the real server."""

from __future__ import annotations

import asyncio
from typing import List

from support import BRIDGE, EIFFEL, QUERY, require, sentences

require("langchain_core")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402

from omnimemory import OmniMemory  # noqa: E402
from omnimemory.langchain import (  # noqa: E402
    STAT_KEYS,
    OmniMemoryCompressor,
    OmniMemoryDocumentCompressor,
    compression_retriever,
    contextual_compression_retriever_class,
)


class FixedRetriever(BaseRetriever):
    """Returns the same documents whatever the query (copies, so nothing is shared)."""

    docs: List[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> List[Document]:
        return [d.model_copy(deep=True) for d in self.docs]


def fixed_docs() -> List[Document]:
    return [
        Document(page_content=EIFFEL, metadata={"source": "eiffel.txt", "page": 1}, id="doc-eiffel"),
        Document(page_content=BRIDGE, metadata={"source": "bridge.txt", "page": 7}, id="doc-bridge"),
        Document(page_content="", metadata={"source": "empty.txt"}),
    ]


def check(docs: List[Document]) -> None:
    assert [d.metadata["source"] for d in docs] == ["eiffel.txt", "bridge.txt", "empty.txt"]
    eiffel, bridge, empty = docs
    assert eiffel.id == "doc-eiffel" and bridge.id == "doc-bridge"
    assert eiffel.metadata["page"] == 1 and bridge.metadata["page"] == 7
    for doc, full in ((eiffel, EIFFEL), (bridge, BRIDGE)):
        assert set(STAT_KEYS) <= set(doc.metadata)
        assert doc.metadata["omnimemory_compressed_tokens"] <= doc.metadata["omnimemory_original_tokens"] // 2
        assert 0 < doc.metadata["omnimemory_compression_ratio"] < 1
        assert 0 <= doc.metadata["omnimemory_quality_score"] <= 1
        assert doc.page_content and len(doc.page_content) < len(full)
        assert all(s in full for s in sentences(doc.page_content))
    assert "330 metres" in eiffel.page_content  # query-aware: the answer is kept
    assert empty.page_content == "" and not set(STAT_KEYS) & set(empty.metadata)


def test_retriever_helper_in_contextual_compression_retriever(base_url: str, pro_key: str) -> None:
    retriever = compression_retriever(
        FixedRetriever(docs=fixed_docs()), api_key=pro_key, base_url=base_url, target_compression=0.5
    )
    assert isinstance(retriever, contextual_compression_retriever_class())
    assert type(retriever).__name__ == "ContextualCompressionRetriever"
    docs = retriever.invoke(QUERY)
    check(docs)
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        stats = om.usage_stats()
    assert stats.stats.total_compressions == 2  # one per non-empty document


def test_async_retriever(base_url: str, pro_key: str) -> None:
    compressor = OmniMemoryCompressor(api_key=pro_key, base_url=base_url, target_compression=0.5, tags={"app": "rag"})
    retriever = contextual_compression_retriever_class()(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=fixed_docs())
    )
    docs = asyncio.run(retriever.ainvoke(QUERY))
    check(docs)
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        groups = om.usage_stats(group_by="app").groups
    assert groups is not None and groups[0]["value"] == "rag" and groups[0]["count"] == 2


def test_compressor_alone_with_a_client(base_url: str, pro_key: str) -> None:
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        compressor = OmniMemoryDocumentCompressor(client=om, target_tokens=12, use_query=False)
        out = compressor.compress_documents(fixed_docs()[:2], query=QUERY)
    assert all(d.metadata["omnimemory_compressed_tokens"] <= 12 for d in out)
    # The settings are pydantic fields; the client is left out of serialisation.
    dumped = compressor.model_dump()
    assert dumped["target_tokens"] == 12 and "client" not in dumped
