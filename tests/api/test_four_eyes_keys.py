"""Four eyes through the API compare people (issue #15 red-team fixes): a checker's key names
its holder, and a holder is one spelling. SQLite and PostgreSQL (the CLI test: SQLite)."""

from __future__ import annotations

from typer.testing import CliRunner

from paycore.api import create_api_key
from paycore.cli import app as cli
from paycore.supplier_bindings import bind_supplier
from tests.api.conftest import bearer, is_problem

NUMBER = "6222999988887777"


async def _key(db, holder: str | None, *scopes: str) -> str:
    async with db.begin() as conn:
        return (await create_api_key(conn, "m1", scopes, holder=holder)).secret


async def test_a_key_without_a_holder_neither_verifies_nor_decides(api, db):
    async with db.begin() as conn:
        await bind_supplier(conn, "m1", "sup-1", actor="user:ops")
    maker = await _key(db, "alice", "payouts:write")
    anonymous = await _key(db, None, "payouts:approve")
    r = await api.post("/v1/suppliers/sup-1/bank-accounts",
                       json={"holder_name": "Silk", "account_number": NUMBER},
                       headers=bearer(maker) | {"Idempotency-Key": "add-1"})
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    for path in (f"/v1/suppliers/sup-1/bank-accounts/{account}/verify",
                 "/v1/payouts/po-x/approve"):
        body = is_problem(await api.post(path, headers=bearer(anonymous)
                                         | {"Idempotency-Key": "k-" + path[-6:]}),
                          403, "key-without-holder")
        assert "--holder" in str(body["detail"])
    # a holder in capitals is the maker, and is recorded in one spelling
    alice = await _key(db, " ALICE ", "payouts:approve")
    is_problem(await api.post(f"/v1/suppliers/sup-1/bank-accounts/{account}/verify",
                              headers=bearer(alice) | {"Idempotency-Key": "v-2"}),
               403, "four-eyes")
    bob = await _key(db, "Bob", "payouts:approve")
    r = await api.post(f"/v1/suppliers/sup-1/bank-accounts/{account}/verify",
                       headers=bearer(bob) | {"Idempotency-Key": "v-3"})
    assert r.status_code == 200 and r.json()["verified_by"] == "user:bob", r.text


def test_a_checkers_key_is_issued_only_to_a_named_person(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/k.sqlite")
    monkeypatch.setenv("PAYCORE_LOG_LEVEL", "WARNING")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    for scope in ("payouts:approve", "payouts:write", "lending:review", "payouts:*", "admin"):
        refused = runner.invoke(cli, ["apikeys", "create", "m1", "--scope", scope])
        assert refused.exit_code == 2 and "--holder" in refused.output, refused.output
    # the holder is a staff user: the same person by the same name in the console
    unknown = runner.invoke(cli, ["apikeys", "create", "m1", "--scope", "payouts:approve",
                                  "--holder", "Alice"])
    assert unknown.exit_code == 2 and "no active staff user" in unknown.output, unknown.output
    assert runner.invoke(cli, ["staff", "add", "alice", "--role", "payments"],
                         env={"PAYCORE_STAFF_PASSWORD": "alice-long-passphrase"}).exit_code == 0
    made = runner.invoke(cli, ["apikeys", "create", "m1", "--scope", "payouts:approve",
                               "--holder", "Alice"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(cli, ["staff", "disable", "alice"]).exit_code == 0
    gone = runner.invoke(cli, ["apikeys", "create", "m1", "--scope", "payouts:approve",
                               "--holder", "alice"])
    assert gone.exit_code == 2 and "no active staff user" in gone.output, gone.output
