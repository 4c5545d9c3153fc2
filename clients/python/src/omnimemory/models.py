"""Typed results of the OmniMemory API.

Each result keeps the whole JSON answer in ``raw``, so fields a newer server adds are never lost.
The first fields of :class:`CompressionResult`, :class:`TokenCount` and
:class:`ValidationResult` are those of the original SDK's classes of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, TypedDict

__all__ = [
    "Message",
    "CompressionResult",
    "TokenCount",
    "ValidationResult",
    "ModelUsage",
    "UsageTotals",
    "UsageStats",
    "QuotaUsage",
    "RateLimitState",
    "Quota",
]


class Message(TypedDict):
    """An OpenAI-style chat message, as sent in and answered by ``/compress`` ``messages``."""

    role: str
    content: str


def _opt_int(v: Any) -> Optional[int]:
    return None if v is None else int(v)


def _opt_float(v: Any) -> Optional[float]:
    return None if v is None else float(v)


@dataclass
class CompressionResult:
    """The answer of ``POST /compress``.

    For a ``messages`` request, ``messages`` holds the kept messages (input order, roles as
    sent), ``retained_indices`` their indices in the input, and ``compressed_text`` their
    contents joined by a blank line; the token counts are over the contents.
    """

    original_tokens: int
    compressed_tokens: int
    compression_ratio: float
    retained_indices: List[int]
    quality_score: float
    compressed_text: str
    model_id: str
    tokenizer_strategy: Optional[str] = None
    is_exact_tokenization: Optional[bool] = None
    content_type: Optional[str] = None
    tokenizer: Optional[str] = None
    budget_tokens: Optional[int] = None
    over_budget: Optional[bool] = None
    unchanged: Optional[bool] = None
    messages: Optional[List[Message]] = None
    #: ``X-Request-Id`` of the answer (the first answer's id when it was replayed).
    request_id: Optional[str] = None
    #: True when the server answered from its idempotency store (``Idempotent-Replayed: true``).
    replayed: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tokens_saved(self) -> int:
        return self.original_tokens - self.compressed_tokens

    @classmethod
    def from_json(cls, data: Mapping[str, Any], headers: Optional[Mapping[str, str]] = None) -> "CompressionResult":
        h = {k.lower(): v for k, v in (headers or {}).items()}
        messages = data.get("messages")
        return cls(
            original_tokens=int(data.get("original_tokens", 0)),
            compressed_tokens=int(data.get("compressed_tokens", 0)),
            compression_ratio=float(data.get("compression_ratio", 0.0)),
            retained_indices=list(data.get("retained_indices") or []),
            quality_score=float(data.get("quality_score", 0.0)),
            compressed_text=data.get("compressed_text") or "",
            model_id=str(data.get("model_id", "")),
            tokenizer_strategy=data.get("tokenizer_strategy"),
            is_exact_tokenization=data.get("is_exact_tokenization"),
            content_type=data.get("content_type"),
            tokenizer=data.get("tokenizer"),
            budget_tokens=_opt_int(data.get("budget_tokens")),
            over_budget=data.get("over_budget"),
            unchanged=data.get("unchanged"),
            messages=[dict(m) for m in messages] if isinstance(messages, list) else None,  # type: ignore[misc]
            request_id=h.get("x-request-id"),
            replayed=h.get("idempotent-replayed", "").lower() == "true",
            raw=dict(data),
        )


@dataclass
class TokenCount:
    """The answer of ``POST /count-tokens``."""

    token_count: int
    model_id: str
    strategy_used: str
    is_exact: bool
    metadata: Optional[Dict[str, Any]] = None
    tokenizer: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TokenCount":
        return cls(
            token_count=int(data.get("token_count", 0)),
            model_id=str(data.get("model_id", "")),
            strategy_used=str(data.get("strategy_used", "")),
            is_exact=bool(data.get("is_exact", False)),
            metadata=data.get("metadata"),
            tokenizer=data.get("tokenizer"),
            raw=dict(data),
        )


@dataclass
class ValidationResult:
    """The answer of ``POST /validate``. ``details`` holds the retention metrics
    (``rouge_l_f1``, ``unigram_recall``, ``number_retention``, ``entity_retention``,
    ``query_coverage``, ``novel_word_rate``, …); ``bertscore_f1`` is ``None`` unless computed."""

    passed: bool
    rouge_l_score: Optional[float] = None
    bertscore_f1: Optional[float] = None
    details: Optional[Dict[str, Any]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ValidationResult":
        return cls(
            passed=bool(data.get("passed", False)),
            rouge_l_score=_opt_float(data.get("rouge_l_score")),
            bertscore_f1=_opt_float(data.get("bertscore_f1")),
            details=data.get("details"),
            raw=dict(data),
        )


@dataclass
class ModelUsage:
    model_id: str
    count: int
    tokens_saved: int


@dataclass
class UsageTotals:
    total_compressions: int = 0
    total_original_tokens: int = 0
    total_compressed_tokens: int = 0
    total_tokens_saved: int = 0
    avg_compression_ratio: float = 0.0
    avg_quality_score: Optional[float] = None
    by_model: List[ModelUsage] = field(default_factory=list)


@dataclass
class UsageStats:
    """The answer of ``GET /usage/stats``: the caller's own usage over ``days`` days; with
    ``group_by``, ``groups`` holds one entry per value of that metadata tag."""

    tracking_enabled: bool
    stats: UsageTotals
    days: Optional[int] = None
    group_by: Optional[str] = None
    groups: Optional[List[Dict[str, Any]]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "UsageStats":
        s = data.get("stats") or {}
        totals = UsageTotals(
            total_compressions=int(s.get("total_compressions", 0)),
            total_original_tokens=int(s.get("total_original_tokens", 0)),
            total_compressed_tokens=int(s.get("total_compressed_tokens", 0)),
            total_tokens_saved=int(s.get("total_tokens_saved", 0)),
            avg_compression_ratio=float(s.get("avg_compression_ratio") or 0.0),
            avg_quality_score=_opt_float(s.get("avg_quality_score")),
            by_model=[
                ModelUsage(
                    model_id=str(m.get("model_id", "")),
                    count=int(m.get("count", 0)),
                    tokens_saved=int(m.get("tokens_saved", 0)),
                )
                for m in (s.get("by_model") or [])
            ],
        )
        return cls(
            tracking_enabled=bool(data.get("tracking_enabled", False)),
            stats=totals,
            days=_opt_int(data.get("days")),
            group_by=data.get("group_by"),
            groups=data.get("groups"),
            raw=dict(data),
        )


@dataclass
class QuotaUsage:
    """The monthly ledger. ``monthly_limit`` and ``remaining`` are ``None`` when unlimited."""

    monthly_limit: Optional[int]
    current_usage: int
    remaining: Optional[int]
    usage_percent: Optional[float]
    unlimited: bool = False
    reserved: int = 0
    period: Optional[str] = None
    resets_at: Optional[str] = None


@dataclass
class RateLimitState:
    """The key's buckets. Token values are ``None`` when the token rate is unlimited."""

    tier: Optional[str]
    tokens_available: Optional[float]
    tokens_capacity: Optional[float]
    refill_rate: Optional[float]
    unlimited: bool = False
    requests_per_second: Optional[float] = None
    burst: Optional[int] = None
    requests_available: Optional[int] = None


@dataclass
class Quota:
    """The answer of ``GET /usage/quota``."""

    authenticated: bool
    tier: Optional[str]
    user_id: Optional[str]
    usage: QuotaUsage
    rate_limit: RateLimitState
    key_id: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Quota":
        q = data.get("quota") or {}
        u = q.get("usage") or {}
        r = q.get("rate_limit") or {}
        return cls(
            authenticated=bool(data.get("authenticated", False)),
            tier=data.get("tier"),
            user_id=data.get("user_id"),
            key_id=data.get("key_id"),
            usage=QuotaUsage(
                monthly_limit=_opt_int(u.get("monthly_limit")),
                current_usage=int(u.get("current_usage") or 0),
                remaining=_opt_int(u.get("remaining")),
                usage_percent=_opt_float(u.get("usage_percent")),
                unlimited=bool(u.get("unlimited", False)),
                reserved=int(u.get("reserved") or 0),
                period=u.get("period"),
                resets_at=u.get("resets_at"),
            ),
            rate_limit=RateLimitState(
                tier=r.get("tier"),
                tokens_available=_opt_float(r.get("tokens_available")),
                tokens_capacity=_opt_float(r.get("tokens_capacity")),
                refill_rate=_opt_float(r.get("refill_rate")),
                unlimited=bool(r.get("unlimited", False)),
                requests_per_second=_opt_float(r.get("requests_per_second")),
                burst=_opt_int(r.get("burst")),
                requests_available=_opt_int(r.get("requests_available")),
            ),
            raw=dict(data),
        )
