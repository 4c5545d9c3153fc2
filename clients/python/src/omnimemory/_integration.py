"""What the LangChain and LlamaIndex integrations share: their settings turned into requests,
one request per text (concurrent on the async path), and the statistics they add to metadata.

No framework is imported here; each integration declares its own pydantic fields (their
bases differ) and calls these with itself as ``owner``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence

from ._client import AsyncOmniMemory, OmniMemory
from .models import CompressionResult

#: The metadata keys an integration adds to each document or node it compresses.
STAT_KEYS = (
    "omnimemory_original_tokens",
    "omnimemory_compressed_tokens",
    "omnimemory_compression_ratio",
    "omnimemory_quality_score",
)


def stats(result: CompressionResult) -> Dict[str, Any]:
    """The :data:`STAT_KEYS` of one answer."""
    return dict(
        zip(
            STAT_KEYS,
            (result.original_tokens, result.compressed_tokens, result.compression_ratio, result.quality_score),
        )
    )


def request_kwargs(owner: Any, query: Optional[str]) -> Dict[str, Any]:
    """The ``compress`` arguments of an integration's settings, with the query when it sends one."""
    return {
        "query": query if owner.use_query and query else None,
        "target_compression": owner.target_compression,
        "target_tokens": owner.target_tokens,
        "model_id": owner.model_id,
        "granularity": owner.granularity,
        "metadata": owner.tags,
    }


def blocking_client(owner: Any) -> OmniMemory:
    """The integration's ``client``, else one of its own made once from its settings."""
    given: Optional[OmniMemory] = owner.client
    if given is not None:
        return given
    own: Optional[OmniMemory] = owner._own_client
    if own is None:
        own = owner._own_client = OmniMemory(
            api_key=owner.api_key, base_url=owner.base_url, timeout=owner.timeout, max_retries=owner.max_retries
        )
    return own


async def compress_concurrently(
    owner: Any, texts: Sequence[Optional[str]], kwargs: Dict[str, Any]
) -> List[Optional[CompressionResult]]:
    """One request per text, all at once; ``None`` texts are not sent. Uses the integration's
    ``async_client``, else a client made for this call and closed after it."""
    owned = owner.async_client is None
    client = owner.async_client or AsyncOmniMemory(
        api_key=owner.api_key, base_url=owner.base_url, timeout=owner.timeout, max_retries=owner.max_retries
    )
    try:

        async def one(text: Optional[str]) -> Optional[CompressionResult]:
            return None if text is None else await client.compress(text, **kwargs)

        return list(await asyncio.gather(*(one(t) for t in texts)))
    finally:
        if owned:
            await client.close()
