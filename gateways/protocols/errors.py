"""What can go wrong with a bank message, as a small hierarchy a caller catches precisely.

Messages say what was wrong and what to check, and never carry key material, secrets or
full signatures: they end up in logs.
"""

from __future__ import annotations

__all__ = [
    "AmountNotAccepted",
    "MalformedMessage",
    "ProtocolError",
    "ReplayedMessage",
    "SignatureInvalid",
    "StaleMessage",
]


class ProtocolError(Exception):
    """A bank message could not be produced or trusted."""


class SignatureInvalid(ProtocolError):
    """The signature is missing, unparsable, made with an unknown key, or does not match."""


class StaleMessage(ProtocolError):
    """The message's timestamp lies outside the accepted window (too old or from the future)."""


class ReplayedMessage(ProtocolError):
    """The message's nonce or event id was already accepted once."""


class MalformedMessage(ProtocolError, ValueError):
    """The message does not follow the wire format (syntax, missing or invalid fields)."""


class AmountNotAccepted(ProtocolError, ValueError):
    """An amount this bank protocol cannot carry exactly (currency, sign, precision, size)."""
