"""OmniMemory: Python client for the OmniMemory context-compression API.

``OmniMemory`` is the blocking client, ``AsyncOmniMemory`` the asyncio one (which also has the
original SDK's ``*_sync`` twins). Integrations: ``omnimemory.langchain`` and
``omnimemory.llama_index`` (optional extras).
"""

from ._client import DEFAULT_BASE_URL, AsyncOmniMemory, OmniMemory, __version__
from .errors import (
    APIConnectionError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    OmniMemoryError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)
from .models import (
    CompressionResult,
    CreatedKey,
    DailyUsage,
    DayUsage,
    KeyInfo,
    KeyList,
    Message,
    ModelUsage,
    Quota,
    QuotaUsage,
    RateLimitState,
    RotatedKey,
    TagCount,
    TokenCount,
    UsageCounts,
    UsageRecord,
    UsageStats,
    UsageTotals,
    ValidationResult,
)

__all__ = [
    "__version__",
    "DEFAULT_BASE_URL",
    "OmniMemory",
    "AsyncOmniMemory",
    "CompressionResult",
    "Message",
    "ModelUsage",
    "Quota",
    "QuotaUsage",
    "RateLimitState",
    "TokenCount",
    "UsageStats",
    "UsageTotals",
    "ValidationResult",
    "UsageRecord",
    "UsageCounts",
    "DayUsage",
    "TagCount",
    "DailyUsage",
    "KeyInfo",
    "KeyList",
    "CreatedKey",
    "RotatedKey",
    "OmniMemoryError",
    "APIConnectionError",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
]
