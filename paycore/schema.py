"""paycore's own tables (the HTTP API's keys and idempotent responses), in a `MetaData`
of their own; migrations in `paycore/migrations/versions` build them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
