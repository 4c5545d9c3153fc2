"""LlamaIndex integration: a node postprocessor.

Needs ``llama-index-core`` 0.12 or later (``pip install "omnimemory[llama-index]"``).

::

    from omnimemory.llama_index import OmniMemoryNodePostprocessor
    engine = index.as_query_engine(node_postprocessors=[OmniMemoryNodePostprocessor(api_key="om_pro_…")])
    print(engine.query("How tall is the Eiffel Tower?"))
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

try:
    from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover
    raise ImportError('omnimemory.llama_index needs llama-index-core: pip install "omnimemory[llama-index]"') from e

from ._client import AsyncOmniMemory, OmniMemory
from ._integration import STAT_KEYS, blocking_client, compress_concurrently, request_kwargs, stats
from .models import CompressionResult

__all__ = ["OmniMemoryNodePostprocessor", "OmniMemoryPostprocessor", "STAT_KEYS"]

# The statistics keys (STAT_KEYS) are excluded from the text the LLM and the embedding model
# see, so they cost no prompt tokens.


class OmniMemoryNodePostprocessor(BaseNodePostprocessor):
    """Compresses the text of each retrieved node with OmniMemory, using the query string of
    the ``QueryBundle``.

    Nodes are copied, never changed in place (the index keeps the full text): each copy keeps
    its id, metadata, relationships and score, with the text compressed and the
    :data:`STAT_KEYS` added to its metadata. Nodes without text (or not text nodes) pass
    through. One request per node; the async path sends them concurrently.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    api_key: Optional[str] = Field(default=None, description="OmniMemory API key (om_<tier>_…)", repr=False)
    base_url: Optional[str] = Field(default=None, description="OmniMemory server URL")
    target_compression: Optional[float] = Field(
        default=None, description="Fraction of each node's tokens to remove (server default 0.944)"
    )
    target_tokens: Optional[int] = Field(default=None, description="Absolute budget per node")
    model_id: Optional[str] = Field(default=None, description="Model whose tokenizer counts tokens")
    granularity: Optional[str] = Field(default=None, description='"sentence" (default) or "word"')
    use_query: bool = Field(default=True, description="Send the query for query-aware compression")
    tags: Optional[Dict[str, str]] = Field(default=None, description="Usage-record metadata tags")
    timeout: float = Field(default=30.0, description="Seconds per request")
    max_retries: int = Field(default=0, description="Retries after 429/503 (Retry-After honoured)")
    client: Optional[OmniMemory] = Field(default=None, exclude=True, description="A ready blocking client")
    async_client: Optional[AsyncOmniMemory] = Field(default=None, exclude=True, description="A ready asyncio client")

    _own_client: Optional[OmniMemory] = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "OmniMemoryNodePostprocessor"

    def _kwargs(self, query_bundle: Optional[QueryBundle]) -> Dict[str, Any]:
        return request_kwargs(self, query_bundle.query_str if query_bundle is not None else None)

    @staticmethod
    def _text_of(item: NodeWithScore) -> Optional[str]:
        node = item.node
        if not isinstance(node, TextNode):
            return None
        text = node.get_content(metadata_mode=MetadataMode.NONE)
        return text if text.strip() else None

    @staticmethod
    def _rebuild(item: NodeWithScore, result: CompressionResult) -> NodeWithScore:
        node = item.node.model_copy(deep=True)
        node.set_content(result.compressed_text)
        node.metadata = {**node.metadata, **stats(result)}
        for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
            keys.extend(k for k in STAT_KEYS if k not in keys)
        return NodeWithScore(node=node, score=item.score)

    def _postprocess_nodes(
        self,
        nodes: List[NodeWithScore],
        query_bundle: Optional[QueryBundle] = None,
    ) -> List[NodeWithScore]:
        client = blocking_client(self)
        kwargs = self._kwargs(query_bundle)
        out: List[NodeWithScore] = []
        for item in nodes:
            text = self._text_of(item)
            out.append(item if text is None else self._rebuild(item, client.compress(text, **kwargs)))
        return out

    async def _apostprocess_nodes(
        self,
        nodes: List[NodeWithScore],
        query_bundle: Optional[QueryBundle] = None,
    ) -> List[NodeWithScore]:
        texts = [self._text_of(item) for item in nodes]
        results = await compress_concurrently(self, texts, self._kwargs(query_bundle))
        return [item if r is None else self._rebuild(item, r) for item, r in zip(nodes, results)]


#: A shorter name for the same class.
OmniMemoryPostprocessor = OmniMemoryNodePostprocessor
