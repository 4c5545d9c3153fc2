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
    "UsageRecord",
    "UsageCounts",
    "DayUsage",
    "TagCount",
    "DailyUsage",
    "KeyInfo",
    "KeyList",
    "CreatedKey",
    "RotatedKey",
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


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)


@dataclass
class UsageRecord:
    """One usage record (a charged ``/compress``), as ``usage_recent()`` and
    ``iter_usage_export()`` give it. ``api_key`` (the key's public id) and ``user_id`` are
    filled by the export only; ``metadata`` is the request's tags (``{}`` when none)."""

    timestamp: str
    request_id: str
    operation: str
    model_id: str
    original_tokens: int
    compressed_tokens: int
    tokens_saved: int
    compression_ratio: float
    quality_score: Optional[float] = None
    tool_id: Optional[str] = None
    session_id: Optional[str] = None
    metadata: Dict[str, str] = field(default_factory=dict)
    api_key: Optional[str] = None
    user_id: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "UsageRecord":
        return cls(
            timestamp=str(data.get("timestamp", "")),
            request_id=str(data.get("request_id", "")),
            operation=str(data.get("operation", "")),
            model_id=str(data.get("model_id", "")),
            original_tokens=int(data.get("original_tokens") or 0),
            compressed_tokens=int(data.get("compressed_tokens") or 0),
            tokens_saved=int(data.get("tokens_saved") or 0),
            compression_ratio=float(data.get("compression_ratio") or 0.0),
            quality_score=_opt_float(data.get("quality_score")),
            tool_id=data.get("tool_id"),
            session_id=data.get("session_id"),
            metadata=dict(data.get("metadata") or {}),
            api_key=data.get("api_key"),
            user_id=data.get("user_id"),
            raw=dict(data),
        )


@dataclass
class UsageCounts:
    requests: int = 0
    original_tokens: int = 0
    compressed_tokens: int = 0
    tokens_saved: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "UsageCounts":
        return cls(
            requests=int(data.get("requests") or 0),
            original_tokens=int(data.get("original_tokens") or 0),
            compressed_tokens=int(data.get("compressed_tokens") or 0),
            tokens_saved=int(data.get("tokens_saved") or 0),
        )


@dataclass
class DayUsage:
    """One UTC day of ``usage_daily()`` (zeros for a day without requests)."""

    date: str
    requests: int = 0
    original_tokens: int = 0
    compressed_tokens: int = 0
    tokens_saved: int = 0


@dataclass
class TagCount:
    name: str
    count: int


@dataclass
class DailyUsage:
    """The answer of ``GET /usage/daily``: ``daily`` lists every UTC day of the window
    ``[since, until)`` (the last ``days`` × 24 hours, so the first and last are partial);
    ``totals`` equal ``usage_stats(days=days)``'s; ``tags`` are the metadata tag names in use,
    most used first (what ``usage_stats(group_by=…)`` takes)."""

    days: int
    since: str
    until: str
    daily: List[DayUsage]
    totals: UsageCounts
    tags: List[TagCount] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DailyUsage":
        daily = []
        for d in data.get("daily") or []:
            c = UsageCounts.from_json(d)
            daily.append(
                DayUsage(
                    date=str(d.get("date", "")),
                    requests=c.requests,
                    original_tokens=c.original_tokens,
                    compressed_tokens=c.compressed_tokens,
                    tokens_saved=c.tokens_saved,
                )
            )
        return cls(
            days=int(data.get("days") or 0),
            since=str(data.get("since", "")),
            until=str(data.get("until", "")),
            daily=daily,
            totals=UsageCounts.from_json(data.get("totals") or {}),
            tags=[
                TagCount(name=str(t.get("name", "")), count=int(t.get("count") or 0)) for t in data.get("tags") or []
            ],
            raw=dict(data),
        )


@dataclass
class KeyInfo:
    """A key as the operator's ``list_keys()`` (and ``deactivate_key`` / ``activate_key``) show
    it. ``status`` is ``active``, ``deactivated`` or ``expired``; ``used`` is this month's
    charged tokens against ``monthly_limit`` (``None`` when unlimited)."""

    key_id: str
    user_id: str
    tier: str
    status: str
    active: bool
    created_at: str
    monthly_limit: Optional[int]
    used: int
    unlimited: bool
    last_used_at: Optional[str]
    last_used_model: Optional[str] = None
    remaining: Optional[int] = None
    usage_percent: Optional[float] = None
    email: Optional[str] = None
    company: Optional[str] = None
    expires_at: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "KeyInfo":
        return cls(
            key_id=str(data.get("key_id", "")),
            user_id=str(data.get("user_id", "")),
            tier=str(data.get("tier", "")),
            status=str(data.get("status", "")),
            active=bool(data.get("active", False)),
            created_at=str(data.get("created_at", "")),
            monthly_limit=_opt_int(data.get("monthly_limit")),
            used=int(data.get("used") or 0),
            unlimited=bool(data.get("unlimited", False)),
            last_used_at=_opt_str(data.get("last_used_at")),
            last_used_model=_opt_str(data.get("last_used_model")),
            remaining=_opt_int(data.get("remaining")),
            usage_percent=_opt_float(data.get("usage_percent")),
            email=_opt_str(data.get("email")),
            company=_opt_str(data.get("company")),
            expires_at=_opt_str(data.get("expires_at")),
            raw=dict(data),
        )


@dataclass
class KeyList:
    """The answer of ``GET /admin/keys``: the keys newest first, for the month ``period``
    (``YYYY-MM``, UTC) whose quotas reset at ``resets_at``."""

    period: str
    resets_at: str
    count: int
    keys: List[KeyInfo]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "KeyList":
        keys = [KeyInfo.from_json(k) for k in data.get("keys") or []]
        return cls(
            period=str(data.get("period", "")),
            resets_at=str(data.get("resets_at", "")),
            count=int(data.get("count", len(keys))),
            keys=keys,
            raw=dict(data),
        )


@dataclass
class CreatedKey:
    """The answer of ``POST /admin/api-key``. ``api_key`` is the secret, shown only here (and
    left out of ``repr``, so it does not reach a log by accident); ``key_id`` is its public id."""

    api_key: str = field(repr=False)
    key_id: str
    user_id: str
    tier: str
    created_at: str
    message: str = ""
    email: Optional[str] = None
    company: Optional[str] = None
    expires_at: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "CreatedKey":
        return cls(
            api_key=str(data.get("api_key", "")),
            key_id=str(data.get("key_id", "")),
            user_id=str(data.get("user_id", "")),
            tier=str(data.get("tier", "")),
            created_at=str(data.get("created_at", "")),
            message=str(data.get("message", "")),
            email=_opt_str(data.get("email")),
            company=_opt_str(data.get("company")),
            expires_at=_opt_str(data.get("expires_at")),
            raw=dict(data),
        )


@dataclass
class RotatedKey:
    """The answer of ``POST /admin/api-key/{key_id}/rotate``. ``api_key`` is the new secret,
    shown only here (left out of ``repr``); it starts with the unchanged ``key_id``. The old
    secret works until ``previous_key_valid_until``, then is refused with ``api_key_rotated``."""

    api_key: str = field(repr=False)
    key_id: str
    user_id: str
    tier: str
    rotated_at: str
    grace_hours: int
    previous_key_valid_until: str
    message: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RotatedKey":
        return cls(
            api_key=str(data.get("api_key", "")),
            key_id=str(data.get("key_id", "")),
            user_id=str(data.get("user_id", "")),
            tier=str(data.get("tier", "")),
            rotated_at=str(data.get("rotated_at", "")),
            grace_hours=int(data.get("grace_hours") or 0),
            previous_key_valid_until=str(data.get("previous_key_valid_until", "")),
            message=str(data.get("message", "")),
            raw=dict(data),
        )
