"""Sends ``pred`` and ``label`` messages to the daemon's input."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import zmq

from .control import ControlClient, DaemonUnavailable
from .curve import CurveKeys

# The daemon counts a ``ping`` (its accounting's ``pings``) and does nothing else with
# it: it proves that the connection delivers, without an error or a change of the model.
_PING = b"{}"


def _pred_body(item: Mapping[str, Any]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"id": item["id"], "preds": dict(item["preds"])}
    for key in ("ts", "label"):
        if item.get(key) is not None:
            body[key] = item[key] if key == "ts" else int(item[key])
    return body


class Producer:
    """Connects to the daemon's input and sends messages.

    ``mode="pub"`` for the daemon's default ``input.type: sub`` (PUB/SUB drops what is
    sent before the subscription reaches the daemon: call :meth:`wait_ready` first);
    ``mode="push"`` for ``input.type: pull`` (queued until connected, nothing lost).
    ``sndhwm``: messages queued before sends drop (PUB) or block (PUSH); 0 for no limit.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, mode: str = "pub", curve: Optional[CurveKeys] = None,
                 sndhwm: int = 100_000, context: Optional[zmq.Context] = None) -> None:
        if mode not in ("pub", "push"):
            raise ValueError("mode must be 'pub' or 'push'")
        self.endpoint = endpoint
        self.mode = mode
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUB if mode == "pub" else zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, 5000)
        if curve:
            curve.apply(self._socket)
        self._socket.connect(endpoint)

    def send_pred(self, id: str, preds: Mapping[str, float], *, ts: Optional[float] = None,
                  label: Optional[int] = None) -> None:
        """One instance's probabilities by classifier name (each in [0, 1]).

        ``ts``: event time (seconds since the epoch); ``label``: for history replayed with
        its outcome known (learnt at once, never pending)."""
        body: Dict[str, object] = {"id": id, "preds": dict(preds)}
        if ts is not None:
            body["ts"] = ts
        if label is not None:
            body["label"] = int(label)
        self.send_raw("pred", json.dumps(body, separators=(",", ":")).encode())

    def send_label(self, id: str, label: int, *, preds: Optional[Mapping[str, float]] = None) -> None:
        """The true class (0 or 1) of an instance sent earlier (or with its ``preds``)."""
        body: Dict[str, object] = {"id": id, "label": int(label)}
        if preds is not None:
            body["preds"] = dict(preds)
        self.send_raw("label", json.dumps(body, separators=(",", ":")).encode())

    def send_preds(self, items: Iterable[Mapping[str, Any]], *, max_batch: int = 1024) -> int:
        """Many instances in ``pred_batch`` messages of up to ``max_batch`` entries (the
        daemon's ``input.max_batch``); returns how many messages were sent.

        Each item is a pred body: ``{"id": ..., "preds": {...}}``, with ``ts`` and
        ``label`` optional. Their scores come back in one ``score_batch`` per message, in
        the same order (a :class:`Subscriber` yields them one by one). A bad entry is
        rejected alone, with an ``error`` naming its position (``Error.entry``)."""
        return self._send_batches("pred_batch", (_pred_body(item) for item in items), max_batch)

    def send_labels(self, items: Iterable[Union[Tuple[str, int], Mapping[str, Any]]], *, max_batch: int = 1024) -> int:
        """Many labels in ``label_batch`` messages: ``(id, label)`` pairs or label bodies;
        returns how many messages were sent."""
        def body(item: Union[Tuple[str, int], Mapping[str, Any]]) -> Dict[str, Any]:
            if isinstance(item, tuple):
                return {"id": item[0], "label": int(item[1])}
            return dict(item)
        return self._send_batches("label_batch", (body(item) for item in items), max_batch)

    def _send_batches(self, topic: str, bodies: Iterable[Dict[str, Any]], max_batch: int) -> int:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        sent = 0
        chunk: List[str] = []
        for body in bodies:
            chunk.append(json.dumps(body, separators=(",", ":")))
            if len(chunk) == max_batch:
                self.send_raw(topic, ('{"items":[' + ",".join(chunk) + "]}").encode())
                sent += 1
                chunk = []
        if chunk:
            self.send_raw(topic, ('{"items":[' + ",".join(chunk) + "]}").encode())
            sent += 1
        return sent

    def send_ping(self) -> None:
        """A readiness check: the daemon counts it in ``accounting.pings`` and nothing else."""
        self.send_raw("ping", _PING)

    def send_raw(self, topic: str, body: bytes) -> None:
        """Sends one message as its two frames (no validation)."""
        self._socket.send_multipart([topic.encode(), body])

    def wait_ready(self, control: ControlClient, timeout: float = 10.0) -> None:
        """Waits until what this producer sends reaches the daemon (PUB's slow joiner).

        Sends ``ping`` messages (counted by the daemon as pings, never as errors) until its
        ``received`` count grows; raises :class:`DaemonUnavailable` after ``timeout``."""
        before = control.received()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send_ping()
            time.sleep(0.05)
            if control.received() > before:
                return
        raise DaemonUnavailable(f"nothing sent to {self.endpoint} reached the daemon within {timeout} s")

    def close(self, linger: float = 5.0) -> None:
        """Closes the socket, waiting up to ``linger`` seconds for queued messages."""
        self._socket.close(linger=int(linger * 1000))

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
