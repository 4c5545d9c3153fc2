"""LlamaIndex integration: a node postprocessor.

Needs ``llama-index-core`` 0.12 or later (``pip install "omnimemory[llama-index]"``).

::

    from omnimemory.llama_index import OmniMemoryNodePostprocessor
    engine = index.as_query_engine(node_postprocessors=[OmniMemoryNodePostprocessor(api_key="om_pro_…")])
    print(engine.query("How tall is the Eiffel Tower?"))
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

try:
    from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover
    raise ImportError('omnimemory.llama_index needs llama-index-core: pip install "omnimemory[llama-index]"') from e

from ._client import AsyncOmniMemory, OmniMemory
from .models import CompressionResult

__all__ = ["OmniMemoryNodePostprocessor", "OmniMemoryPostprocessor", "STAT_KEYS"]

#: The metadata keys the postprocessor adds to each node it compresses. They are excluded from
#: the text the LLM and the embedding model see, so they cost no prompt tokens.
STAT_KEYS = (
    "omnimemory_original_tokens",
    "omnimemory_compressed_tokens",
    "omnimemory_compression_ratio",
    "omnimemory_quality_score",
)


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

    def _sync_client(self) -> OmniMemory:
        if self.client is not None:
            return self.client
        if self._own_client is None:
            self._own_client = OmniMemory(
                api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._own_client

    def _kwargs(self, query_bundle: Optional[QueryBundle]) -> Dict[str, Any]:
        query = query_bundle.query_str if (query_bundle is not None and self.use_query) else None
        return {
            "query": query or None,
            "target_compression": self.target_compression,
            "target_tokens": self.target_tokens,
            "model_id": self.model_id,
            "granularity": self.granularity,
            "metadata": self.tags,
        }

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
        node.metadata = {
            **node.metadata,
            "omnimemory_original_tokens": result.original_tokens,
            "omnimemory_compressed_tokens": result.compressed_tokens,
            "omnimemory_compression_ratio": result.compression_ratio,
            "omnimemory_quality_score": result.quality_score,
        }
        for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
            keys.extend(k for k in STAT_KEYS if k not in keys)
        return NodeWithScore(node=node, score=item.score)

    def _postprocess_nodes(
        self,
        nodes: List[NodeWithScore],
        query_bundle: Optional[QueryBundle] = None,
    ) -> List[NodeWithScore]:
        client = self._sync_client()
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
        kwargs = self._kwargs(query_bundle)
        owned = self.async_client is None
        client = self.async_client or AsyncOmniMemory(
            api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
        )
        try:

            async def one(item: NodeWithScore) -> NodeWithScore:
                text = self._text_of(item)
                if text is None:
                    return item
                return self._rebuild(item, await client.compress(text, **kwargs))

            return list(await asyncio.gather(*(one(n) for n in nodes)))
        finally:
            if owned:
                await client.close()


#: A shorter name for the same class.
OmniMemoryPostprocessor = OmniMemoryNodePostprocessor
