"""Settings from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///paycore.sqlite"


@dataclass(frozen=True)
class Settings:
    database_url: str
    log_format: str  # "json", "console" or "auto" (console in a terminal)
    log_level: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=normalise_database_url(
                os.environ.get("PAYCORE_DATABASE_URL", DEFAULT_DATABASE_URL)
            ),
            log_format=os.environ.get("PAYCORE_LOG_FORMAT", "auto"),
            log_level=os.environ.get("PAYCORE_LOG_LEVEL", "INFO"),
        )


def normalise_database_url(url: str) -> str:
    """Accept the plain URLs people paste and pick the async drivers paycore runs on."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def server_settings(options: str) -> dict[str, str]:
    """libpq `options` (`-c a=b -c c=d`, or `-ca=b`) as a dict of server settings."""
    settings: dict[str, str] = {}
    words = options.split()
    for i, word in enumerate(words):
        if word == "-c" and i + 1 < len(words):
            word = words[i + 1]
        elif word.startswith("-c"):
            word = word[2:]
        else:
            continue
        name, sep, value = word.partition("=")
        if sep and name:
            settings[name] = value
    return settings
