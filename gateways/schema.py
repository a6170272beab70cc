"""gateways's tables (SQLAlchemy Core), in a `MetaData` of its own; migrations in
`paycore/migrations/versions` build them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
