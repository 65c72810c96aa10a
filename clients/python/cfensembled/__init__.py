"""Python client for cfensembled.

- :class:`Producer` sends ``pred`` and ``label`` messages (PUB or PUSH), one at a time
  or in batches (``send_preds``, ``send_labels``);
- :class:`Subscriber` reads the daemon's output as typed :class:`Score`,
  :class:`Alert`, :class:`Health` and :class:`Error` messages, as an iterator or with
  a callback;
- :class:`ControlClient` asks for ``status``, ``checkpoint`` and ``rollback``;
- :class:`CurveKeys` holds CURVE keys (generated, or read from ``cfe keygen`` files).

The wire contract is the daemon's docs/protocol.md.
"""
from .control import CommandRefused, ControlClient, DaemonUnavailable
from .curve import CurveKeys
from .messages import Alert, Error, Health, Message, Score, parse, parse_batch
from .producer import Producer
from .subscriber import Subscriber

__all__ = [
    "Alert", "CommandRefused", "ControlClient", "CurveKeys", "DaemonUnavailable", "Error", "Health", "Message",
    "Producer", "Score", "Subscriber", "parse", "parse_batch",
]
__version__ = "0.1.0"
