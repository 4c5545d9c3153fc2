"""The LlamaIndex postprocessor inside a query engine (MockLLM, an in-memory retriever), against
the real server. Nothing is fetched from the internet: the global tokenizer is a plain
function, so llama-index never loads tiktoken's files, and no embedding model is used."""

from __future__ import annotations

import asyncio
from typing import List

import pytest
from support import BRIDGE, EIFFEL, QUERY, require, sentences

require("llama_index.core")

from llama_index.core import Settings  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode  # noqa: E402

from omnimemory import OmniMemory  # noqa: E402
from omnimemory.llama_index import STAT_KEYS, OmniMemoryNodePostprocessor  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def offline_settings():
    """A whitespace tokenizer and the mock LLM as globals: nothing to download."""
    old_tokenizer = Settings._tokenizer
    old_llm = Settings._llm
    Settings.tokenizer = lambda text: text.split()
    Settings.llm = MockLLM()
    yield
    Settings._tokenizer = old_tokenizer
    Settings._llm = old_llm


class FixedRetriever(BaseRetriever):
    """Returns the same nodes (with scores) whatever the query."""

    def __init__(self, nodes: List[TextNode]) -> None:
        self.nodes = nodes
        super().__init__()

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        return [NodeWithScore(node=n, score=1.0 - i / 10) for i, n in enumerate(self.nodes)]


def fixed_nodes() -> List[TextNode]:
    return [
        TextNode(text=EIFFEL, id_="node-eiffel", metadata={"source": "eiffel.txt"}),
        TextNode(text=BRIDGE, id_="node-bridge", metadata={"source": "bridge.txt"}),
    ]


def check(source_nodes: List[NodeWithScore], originals: List[TextNode], answer: str) -> None:
    assert [n.node.node_id for n in source_nodes] == ["node-eiffel", "node-bridge"]
    assert [n.score for n in source_nodes] == [1.0, 0.9]
    for item, full in zip(source_nodes, (EIFFEL, BRIDGE)):
        node = item.node
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        assert text and len(text) < len(full)
        assert all(s in full for s in sentences(text))
        assert node.metadata["source"] in ("eiffel.txt", "bridge.txt")
        assert set(STAT_KEYS) <= set(node.metadata)
        assert node.metadata["omnimemory_compressed_tokens"] <= node.metadata["omnimemory_original_tokens"] // 2
        # The stats are not part of what the LLM reads.
        assert "omnimemory_" not in node.get_content(metadata_mode=MetadataMode.LLM)
        assert "source: " in node.get_content(metadata_mode=MetadataMode.LLM)
    eiffel_text = source_nodes[0].node.get_content(metadata_mode=MetadataMode.NONE)
    assert "330 metres" in eiffel_text  # query-aware
    # MockLLM answers with its prompt: the LLM saw the compressed texts, not the full ones.
    assert eiffel_text in answer
    dropped = [s for s in sentences(EIFFEL) if s not in eiffel_text]
    assert dropped and not any(s in answer for s in dropped)
    assert "omnimemory_quality_score" not in answer
    # The retriever's own nodes (the index) are untouched.
    assert [n.text for n in originals] == [EIFFEL, BRIDGE]
    assert not any(k in originals[0].metadata for k in STAT_KEYS)


def test_query_engine_with_postprocessor(base_url: str, pro_key: str) -> None:
    nodes = fixed_nodes()
    post = OmniMemoryNodePostprocessor(api_key=pro_key, base_url=base_url, target_compression=0.5)
    engine = RetrieverQueryEngine.from_args(FixedRetriever(nodes), llm=MockLLM(), node_postprocessors=[post])
    response = engine.query(QUERY)
    check(response.source_nodes, nodes, str(response))
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        assert om.usage_stats().stats.total_compressions == 2


def test_async_query_engine(base_url: str, pro_key: str) -> None:
    nodes = fixed_nodes()
    post = OmniMemoryNodePostprocessor(api_key=pro_key, base_url=base_url, target_compression=0.5, tags={"app": "li"})
    engine = RetrieverQueryEngine.from_args(FixedRetriever(nodes), llm=MockLLM(), node_postprocessors=[post])
    response = asyncio.run(engine.aquery(QUERY))
    check(response.source_nodes, nodes, str(response))
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        groups = om.usage_stats(group_by="app").groups
    assert groups is not None and len(groups) == 1
    assert groups[0]["value"] == "li" and groups[0]["count"] == 2


def test_postprocessor_fields_and_no_query(base_url: str, pro_key: str) -> None:
    fields = OmniMemoryNodePostprocessor.model_fields
    for name in ("api_key", "base_url", "target_compression", "target_tokens", "model_id", "granularity", "timeout"):
        assert name in fields, name
    post = OmniMemoryNodePostprocessor(api_key=pro_key, base_url=base_url, target_tokens=15)
    assert post.class_name() == "OmniMemoryNodePostprocessor"
    assert post.to_dict()["target_tokens"] == 15
    out = post.postprocess_nodes([NodeWithScore(node=n) for n in fixed_nodes()])  # no query bundle
    assert all(n.node.metadata["omnimemory_compressed_tokens"] <= 15 for n in out)
