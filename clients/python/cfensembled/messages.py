"""Typed views of what the daemon publishes (docs/protocol.md, the output topics)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union


@dataclass(frozen=True)
class Score:
    """One instance's ensembled score, published as soon as it is scored.

    ``score`` ranks instances; ``probability`` is the calibrated probability of the
    positive class (None from daemons that do not publish it).
    """

    id: str
    score: float
    ts: float
    model_version: int
    n_preds: int
    fallback: bool
    probability: Optional[float] = None
    topic: str = "score"

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Score":
        p = d.get("probability")
        return cls(id=d["id"], score=float(d["score"]), ts=float(d["ts"]), model_version=int(d["model_version"]),
                   n_preds=int(d["n_preds"]), fallback=bool(d["fallback"]),
                   probability=None if p is None else float(p))


@dataclass(frozen=True)
class Alert:
    """A health condition started (``state == "firing"``) or stopped (``"resolved"``) firing."""

    alert: str
    state: str
    severity: str
    ts: float
    model_version: int
    reason: str
    metrics: Dict[str, float]
    action: str
    classifier: Optional[str] = None
    topic: str = "alert"

    @property
    def firing(self) -> bool:
        return self.state == "firing"

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Alert":
        return cls(alert=d["alert"], state=d["state"], severity=d["severity"], ts=float(d["ts"]),
                   model_version=int(d["model_version"]), reason=d["reason"], metrics=dict(d.get("metrics", {})),
                   action=d.get("action", "none"), classifier=d.get("classifier"))


@dataclass(frozen=True)
class Health:
    """The periodic health snapshot (also the core of the ``status`` reply).

    The common fields are attributes; every field the daemon sent is in ``raw``.
    """

    ts: float
    model_version: int
    status: str
    weights: Dict[str, float]
    bias: float
    pending: int
    scored: int
    labelled: int
    pr_auc: Optional[float]
    baseline_pr_auc: Optional[float]
    alerts_firing: List[str]
    fallback_active: bool
    raw: Dict[str, Any] = field(repr=False, default_factory=dict)
    topic: str = "health"

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Health":
        return cls(ts=float(d.get("ts", 0)), model_version=int(d["model_version"]), status=d["status"],
                   weights={k: float(v) for k, v in d.get("weights", {}).items()}, bias=float(d.get("bias", 0)),
                   pending=int(d.get("pending", 0)), scored=int(d.get("scored", 0)), labelled=int(d.get("labelled", 0)),
                   pr_auc=d.get("pr_auc"), baseline_pr_auc=d.get("baseline_pr_auc"),
                   alerts_firing=list(d.get("alerts_firing", [])), fallback_active=bool(d.get("fallback_active", False)),
                   raw=d)


@dataclass(frozen=True)
class Error:
    """A message the daemon rejected, and why (rate-limited by ``output.error_rate_per_s``)."""

    ts: float
    reason: str
    topic_of_input: Optional[str] = None
    id: Optional[str] = None
    topic: str = "error"
    #: The entry's position in its batch (``pred_batch``, ``label_batch``), from 0.
    entry: Optional[int] = None

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Error":
        entry = d.get("entry")
        return cls(ts=float(d["ts"]), reason=d["reason"], topic_of_input=d.get("topic"), id=d.get("id"),
                   entry=None if entry is None else int(entry))


Message = Union[Score, Alert, Health, Error]
_TYPES = {"score": Score, "alert": Alert, "health": Health, "error": Error}


def parse_batch(body: Union[bytes, str]) -> List[Score]:
    """Decodes a ``score_batch`` body into its scores, in the order published.

    Raises ``ValueError`` for a body that is not the documented JSON."""
    try:
        return [Score.from_json(item) for item in json.loads(body)["items"]]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"malformed score_batch body: {e}") from e


def parse(topic: Union[bytes, str], body: Union[bytes, str]) -> Message:
    """Decodes one output message (its two frames) into its typed form.

    Raises ``ValueError`` for an unknown topic or a body that is not the documented JSON.
    """
    name = topic.decode() if isinstance(topic, bytes) else topic
    kind = _TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown topic {name!r}")
    try:
        return kind.from_json(json.loads(body))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"malformed {name} body: {e}") from e
