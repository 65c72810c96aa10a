"""CURVE keys for talking to a daemon that runs with ``security.curve_secret_key_file``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import zmq


def _read_key(path: str) -> str:
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                if len(line) != 40:
                    raise ValueError(f"{path}: expected a 40-character Z85 key, got {len(line)} characters")
                return line
    raise ValueError(f"{path}: no key in the file")


@dataclass(frozen=True)
class CurveKeys:
    """This client's key pair and the daemon's public key (Z85 text, 40 characters each).

    The daemon admits the client only if its public key is in the daemon's
    ``security.allowed_clients``.
    """

    public_key: str
    secret_key: str
    server_key: str

    @classmethod
    def from_files(cls, secret_key_file: str, server_key_file: str, public_key_file: Optional[str] = None) -> "CurveKeys":
        """Reads the files ``cfe keygen`` writes: PREFIX.key (secret) and the daemon's PREFIX.pub.

        The client's public key is derived from its secret key unless ``public_key_file`` is given.
        """
        secret = _read_key(secret_key_file)
        public = _read_key(public_key_file) if public_key_file else zmq.curve_public(secret.encode()).decode()
        return cls(public_key=public, secret_key=secret, server_key=_read_key(server_key_file))

    @staticmethod
    def generate() -> tuple[str, str]:
        """A new key pair (public, secret), as ``cfe keygen`` makes."""
        public, secret = zmq.curve_keypair()
        return public.decode(), secret.decode()

    def apply(self, socket: zmq.Socket) -> None:
        """Makes ``socket`` a CURVE client of the daemon (before it connects)."""
        socket.curve_publickey = self.public_key.encode()
        socket.curve_secretkey = self.secret_key.encode()
        socket.curve_serverkey = self.server_key.encode()
