"""The daemon's control socket: ``status``, ``checkpoint`` and ``rollback``."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import zmq

from .curve import CurveKeys


class DaemonUnavailable(Exception):
    """No daemon answered (no socket file, nothing listening, or no reply in time)."""


class CommandRefused(Exception):
    """The daemon answered ``ok: false``; the message is its reason."""


class ControlClient:
    """Request-reply client of the daemon's control socket.

    Give ``endpoint`` (e.g. ``ipc:///var/lib/cfensembled/control.sock``) or
    ``state_dir`` (the socket is ``STATE_DIR/control.sock``). Each call opens a fresh
    REQ socket, so a timed-out request never leaves the client stuck.
    """

    def __init__(self, endpoint: Optional[str] = None, *, state_dir: Optional[str] = None, timeout: float = 5.0,
                 curve: Optional[CurveKeys] = None, context: Optional[zmq.Context] = None) -> None:
        if endpoint is None:
            if state_dir is None:
                raise ValueError("give endpoint or state_dir")
            endpoint = f"ipc://{os.path.abspath(state_dir)}/control.sock"
        self.endpoint = endpoint
        self.timeout = timeout
        self.curve = curve
        self._context = context or zmq.Context.instance()

    def request(self, command: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Sends ``{"cmd": command}`` and returns the reply; raises :class:`CommandRefused`
        on ``ok: false`` and :class:`DaemonUnavailable` when nothing answers in time."""
        if self.endpoint.startswith("ipc://") and not os.path.exists(self.endpoint[len("ipc://"):]):
            raise DaemonUnavailable(f"no daemon: {self.endpoint[len('ipc://'):]} does not exist")
        wait = self.timeout if timeout is None else timeout
        req = self._context.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, int(wait * 1000))
        req.setsockopt(zmq.SNDTIMEO, int(wait * 1000))
        if self.curve:
            self.curve.apply(req)
        try:
            req.connect(self.endpoint)
            req.send(json.dumps({"cmd": command}).encode())
            try:
                reply = json.loads(req.recv())
            except zmq.Again:
                raise DaemonUnavailable(f"no reply from {self.endpoint} within {wait} s") from None
        finally:
            req.close()
        if not reply.get("ok", False):
            raise CommandRefused(reply.get("error", f"{command} failed"))
        return reply

    def status(self) -> Dict[str, Any]:
        """The health fields plus ``config`` and ``persistence`` (docs/protocol.md)."""
        return self.request("status")

    def checkpoint(self, timeout: float = 300.0) -> Dict[str, Any]:
        """Writes a checkpoint and returns once it is durable: ``path``, ``bytes``, ``model_version``."""
        return self.request("checkpoint", timeout=timeout)

    def rollback(self) -> int:
        """Restores the last healthy model as a new version; returns that version."""
        return int(self.request("rollback")["model_version"])

    def received(self) -> int:
        """Messages the daemon has received so far (its accounting)."""
        return int(self.status()["accounting"]["received"])
