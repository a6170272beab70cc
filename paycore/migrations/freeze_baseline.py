"""Freeze the migration chain into one baseline migration whose SQL is written out in it.

    PYTHONPATH=. python paycore/migrations/freeze_baseline.py [--pg-url URL] [--check]

runs the migrations that are in `paycore/migrations/versions` now (the baseline, and any
migration added on top of it) on a scratch SQLite file and on a scratch PostgreSQL schema,
reads back what they built, and writes `versions/baseline.py`: per dialect, the statements
that build exactly that schema, as literal SQL. Nothing in the baseline imports `ledger` or
any other package, so editing the code can never change what an old revision built.

- SQLite: every `sqlite_master` statement (tables, indexes, triggers), in the order the
  database holds them (the order they were made in), as SQLite stored them.
- PostgreSQL: `pg_dump --schema-only --no-owner --no-privileges` of the scratch schema (one
  statement per dump entry: functions, tables, sequences, defaults, constraints, indexes,
  triggers), the schema's name taken out of every name, then one `DO` block, read from the
  catalog, for what depends on the role and schema that migrate: the roles the schema
  grants to (created if missing; they are the cluster's), their privileges on the schema
  and its tables, and each function's owner, EXECUTE grants and pinned `search_path`.
- Rows: a fresh schema holds none (checked); the script refuses to freeze one that does.
- Downgrade: drops every table, function and grant the upgrade made (roles stay: they are
  shared by every schema of the cluster).

The baseline's revision id is the head it replaces (0031: 0001..0029 and 0031 were
squashed; there was no 0019 or 0030), so a database built by exactly that chain is
current, and a migration written against that head applies on top. To fold newer
migrations in (e.g. 0032 written against 0031): run this script with them in place (the
baseline takes the new head's id; `--revision` names another), check the diff of
`baseline.py`, delete them. `--check` writes nothing and exits 1 if `baseline.py` is not
what the chain builds (a fixed point: run on the baseline alone it must reproduce itself).

PostgreSQL's CHECKs of the form `varchar_column IN (...)` are written back as the IN list
(see _VARCHAR_IN_LIST): pg_dump's text of them parses into a different expression. Needs
`pg_dump` of the server's major version on PATH and PAYCORE_TEST_PG_URL (or --pg-url)
naming a database it may create and drop a schema in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from paycore import db as paycore_db

VERSIONS = Path(__file__).resolve().parent / "versions"
BASELINE = VERSIONS / "baseline.py"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

_DOCSTRING = '''"""baseline: the whole schema, every package's tables, indexes, constraints, triggers and
functions, and on PostgreSQL the ledger's writer role and its grants, as the migrations up
to {head} built it (squashed: nothing has been released).

The SQL is frozen here, written by `paycore/migrations/freeze_baseline.py`; nothing in
this file reads the code, so editing `ledger/` (or anything else) cannot change what this
revision builds. A live function's text also stands in `ledger/ddl*.py`, and
tests/paycore/test_migrations.py fails when the two differ: changing a function means a
new migration.

Databases: its revision id is {head}, the head it replaces, so a database built by exactly
that chain is current. A database at any older revision of the old chain cannot be
upgraded (those revisions are gone): build it anew. Downgrade drops everything this
revision made, except the cluster-wide roles (other schemas may use them).

Revision ID: {head}
Revises:
"""'''

_MODULE = '''{docstring}
from alembic import op

revision = {head!r}
down_revision = None
branch_labels = None
depends_on = None


def _statements(which: dict[str, list[str]]) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect not in which:
        raise NotImplementedError(f"paycore runs on PostgreSQL or SQLite, not {{dialect}}")
    return which[dialect]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)


# Everything below is written by paycore/migrations/freeze_baseline.py: do not edit by hand.

{body}
'''


def _literal(statement: str) -> str:
    """`statement` as a Python literal a reader can read as SQL."""
    if '"""' not in statement and "\\" not in statement and not statement.endswith('"'):
        return 'r"""' + statement + '"""'
    return repr(statement)


def _render_list(name: str, statements: list[str]) -> str:
    return f"{name} = [\n" + "".join(f"    {_literal(s)},\n" for s in statements) + "]\n"


# --- SQLite ------------------------------------------------------------------------------

async def freeze_sqlite(path: Path) -> tuple[list[str], list[str]]:
    engine = paycore_db.create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await paycore_db.upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                " AND name NOT LIKE 'sqlite_%' AND tbl_name <> 'alembic_version'"
                " ORDER BY rowid"))).all()
            tables = [r.name for r in rows if r.type == "table"]
            for table in tables:
                count = (await conn.execute(sa.text(f'SELECT count(*) FROM "{table}"'))).scalar()
                if count:
                    raise SystemExit(f"SQLite: {table} holds {count} rows after the migrations;"
                                     " this script freezes no rows")
            references: dict[str, set[str]] = {}
            for table in tables:
                fks = (await conn.execute(sa.text(f'PRAGMA foreign_key_list("{table}")'))).all()
                references[table] = {fk[2] for fk in fks if fk[2] != table}
    finally:
        await engine.dispose()
    unexpected = {r.type for r in rows} - {"table", "index", "trigger", "view"}
    if unexpected:
        raise SystemExit(f"SQLite: objects of a kind this script does not freeze: {unexpected}")
    upgrade = [r.sql for r in rows]
    downgrade = [f"DROP TABLE IF EXISTS {t}" for t in _referencing_first(tables, references)]
    return upgrade, downgrade


def _referencing_first(tables: list[str], references: dict[str, set[str]]) -> list[str]:
    """`tables` ordered so that each comes before every table it refers to."""
    ordered: list[str] = []
    left = list(reversed(tables))
    while left:
        for table in left:
            if not any(table in references[other] for other in left if other != table):
                ordered.append(table)
                left.remove(table)
                break
        else:
            raise SystemExit(f"foreign keys refer in a circle among {left}")
    return ordered


# --- PostgreSQL --------------------------------------------------------------------------

_TOC = re.compile(r"^--\n-- Name: (?P<name>.*?); Type: (?P<type>.*?); Schema: (?P<schema>.*?);"
                  r" Owner: .*\n--\n", re.MULTILINE)
_TOP_LEVEL_NOISE = re.compile(r"^(SET \w+ = .*;|SELECT pg_catalog\.set_config\(.*\);|\\.*|--.*)$",
                              re.MULTILINE)


# pg_dump prints `varchar_column IN ('a', 'b')` as `((c)::text = ANY ((ARRAY['a'::character
# varying, 'b'::character varying])::text[]))`, which PostgreSQL parses back into another
# tree (each element cast to text) that it prints differently: the CHECK would not be the
# one the migrations made. Written back as the IN list it came from, it is.
_VARCHAR_IN_LIST = re.compile(r"\(\((\w+)\)::text = ANY \(\(ARRAY\[((?:'[^']*'::character varying"
                              r"(?:, )?)+)\]\)::text\[\]\)\)")


def _as_in_list(match: re.Match[str]) -> str:
    values = re.findall(r"'[^']*'", match[2])
    return f"({match[1]} IN ({', '.join(values)}))"


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_dump(url: str, schema: str) -> str:
    done = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", f"--schema={schema}",
         f"--dbname={_libpq(url)}"], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"pg_dump failed: {done.stderr}")
    return done.stdout


def _dump_statements(dump: str, schema: str) -> tuple[list[str], set[str]]:
    """The dump's entries as statements without the schema's name; and the functions whose
    `search_path` was pinned to the schema (set again by the grants' block)."""
    statements: list[str] = []
    pinned: set[str] = set()
    matches = list(_TOC.finditer(dump))
    for n, match in enumerate(matches):
        end = matches[n + 1].start() if n + 1 < len(matches) else len(dump)
        text = _TOP_LEVEL_NOISE.sub("", dump[match.end():end]).strip()
        if match["type"] == "SCHEMA":
            continue
        pin = f"    SET search_path TO '{schema}', 'pg_temp'\n"
        if pin in text:
            pinned.add(match["name"].split("(")[0])
            text = text.replace(pin, "")
        text = re.sub(rf"\b{schema}\.", "", text)
        text = _VARCHAR_IN_LIST.sub(_as_in_list, text)
        if schema in text:
            raise SystemExit(f"PostgreSQL: {match['name']} still names the scratch schema:\n{text}")
        if not text.endswith(";"):
            raise SystemExit(f"PostgreSQL: the dump entry {match['name']} is not one statement")
        statements.append(text[:-1])
    return statements, pinned


_GRANTS_BLOCK = """DO $$
DECLARE s text := current_schema();
BEGIN
{lines}
END $$"""


async def _grants(conn: asyncpg.Connection, schema: str, pinned: set[str]) -> tuple[list[str], list[str]]:
    """plpgsql lines that make the roles, grants and function owners the chain made, and
    the lines that undo the grants on the schema; in terms of the role that migrates
    (CURRENT_USER) and the schema it migrates (`s`)."""
    me = await conn.fetchval("SELECT current_user")
    roles = await conn.fetch(
        """SELECT DISTINCT r.rolname, r.rolcanlogin FROM pg_roles r
            WHERE r.rolname <> current_user AND (
              r.oid IN (SELECT (aclexplode(nspacl)).grantee FROM pg_namespace WHERE nspname = $1)
              OR r.oid IN (SELECT (aclexplode(relacl)).grantee FROM pg_class
                            WHERE relnamespace = $1::regnamespace)
              OR r.oid IN (SELECT (aclexplode(proacl)).grantee FROM pg_proc
                            WHERE pronamespace = $1::regnamespace)
              OR r.oid IN (SELECT proowner FROM pg_proc WHERE pronamespace = $1::regnamespace))
            ORDER BY r.rolname""", schema)
    lines: list[str] = []
    for role in roles:
        login = "LOGIN" if role["rolcanlogin"] else "NOLOGIN"
        lines += ["  BEGIN",
                  f"    CREATE ROLE {role['rolname']} {login};",
                  "  EXCEPTION WHEN duplicate_object OR unique_violation THEN",
                  "    NULL;  -- the cluster's: another schema's migration made it",
                  "  END;"]
    undo: list[str] = []
    for grant in await conn.fetch(
            """SELECT g.grantee::regrole::text AS grantee, g.privilege_type FROM pg_namespace n,
                      aclexplode(n.nspacl) g
                WHERE n.nspname = $1 AND g.grantee <> n.nspowner ORDER BY 1, 2""", schema):
        lines.append(f"  EXECUTE format('GRANT {grant['privilege_type']} ON SCHEMA %I TO "
                     f"{grant['grantee']}', s);")
        undo.append(f"  EXECUTE format('REVOKE {grant['privilege_type']} ON SCHEMA %I FROM "
                    f"{grant['grantee']}', s);")
    owned = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace"
        " AND relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)", schema)
    if owned:
        raise SystemExit(f"PostgreSQL: relations owned by another role: {owned}")
    if await conn.fetchval(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = $1::regnamespace AND a.attacl IS NOT NULL", schema):
        raise SystemExit("PostgreSQL: column privileges, which this script does not freeze")
    for grant in await conn.fetch(
            """SELECT c.relname, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
                      g.grantee, string_agg(g.privilege_type, ', ' ORDER BY g.privilege_type) AS what
                 FROM pg_class c, aclexplode(c.relacl) g
                WHERE c.relnamespace = $1::regnamespace AND g.grantee <> c.relowner
                GROUP BY c.relname, c.relkind, g.grantee ORDER BY c.relname, g.grantee""", schema):
        grantee = "PUBLIC" if grant["grantee"] == 0 else await conn.fetchval(
            "SELECT $1::oid::regrole::text", grant["grantee"])
        lines.append(f"  GRANT {grant['what']} ON {grant['kind']} {grant['relname']} TO {grantee};")
    for function in await conn.fetch(
            """SELECT p.oid, p.proname, p.oid::regprocedure::text AS signature,
                      p.proowner::regrole::text AS owner, p.proacl IS NOT NULL AS has_acl,
                      coalesce(p.proacl::text[] && ARRAY['=X/' || p.proowner::regrole::text], false)
                        AS public_executes
                 FROM pg_proc p WHERE p.pronamespace = $1::regnamespace ORDER BY p.proname""",
            schema):
        signature = re.sub(rf"\b{schema}\.", "", function["signature"])
        if function["proname"] in pinned:
            lines.append(f"  EXECUTE format('ALTER FUNCTION {signature} SET search_path = %I, "
                         "pg_temp', s);")
        if function["owner"] != me:
            lines.append(f"  ALTER FUNCTION {signature} OWNER TO {function['owner']};")
        if not function["has_acl"]:
            continue
        if not function["public_executes"]:
            lines.append(f"  REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC;")
        for grantee in await conn.fetch(
                """SELECT g.grantee::regrole::text AS name FROM pg_proc p, aclexplode(p.proacl) g
                    WHERE p.oid = $1 AND g.grantee <> p.proowner AND g.grantee <> 0
                    ORDER BY g.grantee = (SELECT oid FROM pg_roles WHERE rolname = current_user),
                             1""", function["oid"]):
            name = "CURRENT_USER" if grantee["name"] == me else grantee["name"]
            lines.append(f"  GRANT EXECUTE ON FUNCTION {signature} TO {name};")
    return lines, undo


async def freeze_postgresql(url: str) -> tuple[list[str], list[str]]:
    schema = f"paycore_freeze_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_libpq(url))
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        engine = paycore_db.create_engine(
            url, connect_args={"server_settings": {"search_path": schema}})
        try:
            await paycore_db.upgrade(engine)
        finally:
            await engine.dispose()
        for table in await admin.fetch(
                "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace"
                " AND relkind = 'r' AND relname <> 'alembic_version'", schema):
            count = await admin.fetchval(f'SELECT count(*) FROM {schema}."{table["relname"]}"')
            if count:
                raise SystemExit(f"PostgreSQL: {table['relname']} holds {count} rows after the"
                                 " migrations; this script freezes no rows")
        dump = await asyncio.to_thread(_pg_dump, url, schema)
        statements, pinned = _dump_statements(dump, schema)
        statements = [s for s in statements if not re.match(
            r"(CREATE TABLE|ALTER TABLE ONLY) alembic_version\b", s)]
        lines, undo_schema = await _grants(admin, schema, pinned)
        if lines:
            statements.append(_GRANTS_BLOCK.format(lines="\n".join(lines)))
        tables = [r["relname"] for r in await admin.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r'"
            " AND relname <> 'alembic_version' ORDER BY relname", schema)]
        loose = [r["relname"] for r in await admin.fetch(
            """SELECT c.relname FROM pg_class c WHERE c.relnamespace = $1::regnamespace
                 AND c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_depend d
                   WHERE d.objid = c.oid AND d.deptype = 'a')""", schema)]
        functions = [re.sub(rf"\b{schema}\.", "", r["signature"]) for r in await admin.fetch(
            "SELECT oid::regprocedure::text AS signature FROM pg_proc"
            " WHERE pronamespace = $1::regnamespace ORDER BY proname", schema)]
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()
    downgrade = [*(f"DROP TABLE IF EXISTS {t} CASCADE" for t in tables),
                 *(f"DROP SEQUENCE IF EXISTS {s}" for s in loose),
                 *(f"DROP FUNCTION IF EXISTS {f}" for f in functions)]
    if undo_schema:
        downgrade.append(_GRANTS_BLOCK.format(lines="\n".join(undo_schema)))
    return statements, downgrade


# --- the baseline ------------------------------------------------------------------------

def _head() -> str:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(paycore_db.alembic_config()).get_heads()
    if len(heads) != 1:
        raise SystemExit(f"the migrations have {len(heads)} heads ({heads}): merge them first")
    return heads[0]


def render(head: str, postgresql: tuple[list[str], list[str]],
           sqlite: tuple[list[str], list[str]]) -> str:
    body = "\n".join([
        _render_list("POSTGRESQL", postgresql[0]), _render_list("SQLITE", sqlite[0]),
        _render_list("POSTGRESQL_DOWNGRADE", postgresql[1]),
        _render_list("SQLITE_DOWNGRADE", sqlite[1]),
        'UPGRADE = {"postgresql": POSTGRESQL, "sqlite": SQLITE}\n'
        'DOWNGRADE = {"postgresql": POSTGRESQL_DOWNGRADE, "sqlite": SQLITE_DOWNGRADE}',
    ])
    return _MODULE.format(docstring=_DOCSTRING.format(head=head), head=head, body=body)


async def freeze(pg_url: str, revision: str | None = None) -> str:
    head = revision or _head()
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = await freeze_sqlite(Path(scratch) / "freeze.sqlite")
    postgresql = await freeze_postgresql(pg_url)
    return render(head, postgresql, sqlite)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get("PAYCORE_TEST_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--revision", help="the baseline's revision id (default: the head it "
                        "replaces)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if baseline.py is not what the chain builds")
    args = parser.parse_args()
    text = asyncio.run(freeze(args.pg_url, args.revision))
    if args.check:
        if BASELINE.exists() and BASELINE.read_text() == text:
            sys.stdout.write(f"{BASELINE} is what the migrations build\n")
            return 0
        sys.stderr.write(f"{BASELINE} differs from what the migrations build\n")
        return 1
    BASELINE.write_text(text)
    others = sorted(p.name for p in VERSIONS.glob("*.py") if p != BASELINE)
    sys.stdout.write(f"wrote {BASELINE}" + (f"; now delete what it folded in: {', '.join(others)}"
                                            if others else "") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
