"""Reads the daemon's output: scores, alerts, health and errors, typed."""
from __future__ import annotations

import time
from collections import deque
from typing import Callable, Deque, Iterable, Iterator, Optional

import zmq

from .curve import CurveKeys
from .messages import Message, parse, parse_batch

TOPICS = ("score", "alert", "health", "error")


class Subscriber:
    """Subscribes to some of the daemon's output topics (all four by default).

    Iterate over it for typed messages (:class:`Score`, :class:`Alert`, :class:`Health`,
    :class:`Error`), call :meth:`recv` with a timeout, or :meth:`run` with a callback.
    The ``score`` topic includes ``score_batch``: the scores of a batch of preds arrive
    one :class:`Score` at a time, in the order published.
    A subscriber that falls behind loses messages at ``rcvhwm`` (0: no limit); the
    daemon never waits for it.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5556", topics: Iterable[str] = TOPICS, *,
                 curve: Optional[CurveKeys] = None, rcvhwm: int = 100_000, context: Optional[zmq.Context] = None) -> None:
        topics = list(topics)
        unknown = [t for t in topics if t not in TOPICS]
        if unknown:
            raise ValueError(f"unknown topics {unknown}; the daemon publishes {list(TOPICS)}")
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        for t in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, t.encode())
        if curve:
            curve.apply(self._socket)
        self._socket.connect(endpoint)
        self.skipped = 0
        self._batched: Deque[Message] = deque()

    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, or None if none arrives within ``timeout`` seconds (None: wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._batched:
                return self._batched.popleft()
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._socket.poll(None if wait is None else int(wait * 1000)):
                return None
            frames = self._socket.recv_multipart()
            if len(frames) == 2:
                try:
                    if frames[0] == b"score_batch":
                        self._batched.extend(parse_batch(frames[1]))
                        continue
                    return parse(frames[0], frames[1])
                except ValueError:
                    pass
            self.skipped += 1
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def __iter__(self) -> Iterator[Message]:
        while True:
            message = self.recv()
            if message is not None:
                yield message

    def run(self, callback: Callable[[Message], Optional[bool]], *, timeout: Optional[float] = None,
            count: Optional[int] = None) -> int:
        """Calls ``callback`` with each message until it returns True, ``count`` messages
        were handled, or ``timeout`` seconds passed; returns how many were handled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        handled = 0
        while count is None or handled < count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                break
            message = self.recv(wait)
            if message is None:
                continue
            handled += 1
            if callback(message):
                break
        return handled

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
