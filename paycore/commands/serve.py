"""`paycore serve`: the HTTP API under uvicorn; `paycore apikeys`: merchants' API keys."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paycore.runner import command_group, console, errors, in_transaction, read_only, run
from paycore.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

apikeys_app = command_group("Merchants' API keys (stored hashed; shown once).")
idempotency_app = command_group("The API's stored Idempotency-Key responses.")


def serve(host: str | None = typer.Option(None, help="address to listen on (default "
                                                     "PAYCORE_API_HOST or 127.0.0.1)"),
          port: int | None = typer.Option(None, help="port (default PAYCORE_API_PORT or 8000)"),
          workers: int = typer.Option(1, min=1, help="worker processes sharing the port "
                                      "(each its own event loop, pool and banks; about one "
                                      "per core)"),
          demo: bool = typer.Option(False, "--demo", help="serve the books `paycore demo` "
                                    "left (paycore-demo.sqlite) with a demo staff user of "
                                    "each role for the console, printed with its password"),
          ) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the operations
    console (/console). The payment routes need the deployment's banks:
    PAYCORE_BANKS=module:function returning a gateways.BankDirectory whose notify_base_url
    is this server's public URL + /v1/notifications."""
    import uvicorn

    from paycore.logging import configure_logging

    if demo:
        _prepare_demo(host or "127.0.0.1", port or 8000)
    base = Settings.from_env()
    settings = _api_settings(base)
    configure_logging(settings.log_format, settings.log_level)
    config = uvicorn.Config(
        "paycore.commands.serve:build_app", factory=True, workers=workers,
        host=host or settings.host, port=port or settings.port, log_config=None,
        access_log=False, http=_best("httptools", "h11"), loop=_best("uvloop", "asyncio"),
        lifespan="on")
    if workers == 1:
        config.load()  # the app is built (and the startup heap frozen) before serving
        uvicorn.Server(config).run()
        return
    # one app per worker process, each built in its process (`build_app`) on the socket
    # bound here; uvicorn's supervisor restarts a worker that dies
    from uvicorn.supervisors import Multiprocess

    Multiprocess(config, sockets=[config.bind_socket()]).run()


def _prepare_demo(host: str, port: int) -> None:
    """Point this server at the demo's books and give the console a user per role."""
    from pathlib import Path

    from rich.table import Table  # rich loads with the commands that print tables

    from paycore import demo as demo_story
    from paycore.console.demo import ensure_demo_staff

    path = Path("paycore-demo.sqlite")
    if not path.exists():
        errors.print("[red]no demo books here[/red]: run [bold]make demo[/bold] (or "
                     "[bold]paycore demo[/bold]) first, in this folder")
        raise typer.Exit(2)
    url = demo_story.database_url(path)
    os.environ["PAYCORE_DATABASE_URL"] = url
    # the demo is plain HTTP on this machine: a browser other than Chromium may refuse to
    # send a Secure cookie back over it
    os.environ.setdefault("PAYCORE_CONSOLE_INSECURE_COOKIES", "1")

    from paycore import db

    async def go(engine: Any) -> list[tuple[str, str, str]]:
        await db.upgrade(engine)
        return await ensure_demo_staff(engine)
    users = run(go, url=url, quiet=True)
    table = Table("username", "role", "password", title="Demo staff (demo books only)",
                  title_justify="left")
    for username, role, password in users:
        table.add_row(username, role, password)
    console.print(table)
    console.print(f"Open the console: http://{host}:{port}/console — sign in as any of them "
                  "(payments.demo requests a payout, payments2.demo approves it).")


def _best(module: str, fallback: str) -> str:
    import importlib.util

    return module if importlib.util.find_spec(module) is not None else fallback


def _api_settings(base: Settings) -> Any:
    from paycore.api.settings import ApiSettings  # the web stack loads only to serve

    return ApiSettings.from_env(base)


def _pool_options(url: str) -> dict[str, int]:
    """A worker's PostgreSQL pool: `PAYCORE_DB_POOL_SIZE` sessions (default 16) kept open,
    none opened beyond them (`PAYCORE_DB_POOL_OVERFLOW`, default 0): a request waits for a
    session rather than opening one that is closed after use — under load that churn
    (connect, re-prepare every statement, claim a ledger lane slot) cost more CPU than the
    requests' own work."""
    if not url.startswith("postgresql"):
        return {}
    return {"pool_size": int(os.environ.get("PAYCORE_DB_POOL_SIZE", "16")),
            "max_overflow": int(os.environ.get("PAYCORE_DB_POOL_OVERFLOW", "0"))}


def build_app() -> Any:
    """The API of one `paycore serve` worker process: its engine, its banks (loaded and
    closed with the app's lifespan) and its startup heap frozen once built."""
    import gateways
    from paycore import db
    from paycore.api import create_app
    from paycore.commands.payments import load_banks
    from paycore.logging import configure_logging
    from paycore.payout_controls import install_account_keys
    from paycore.startup_heap import freeze_startup_heap

    base = Settings.from_env()
    settings = _api_settings(base)
    configure_logging(settings.log_format, settings.log_level)
    install_account_keys()
    engine = db.create_engine(base.database_url, **_pool_options(base.database_url))
    app = create_app(engine, settings=settings)
    routers_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        banks: gateways.BankDirectory | None = None
        try:
            if os.environ.get("PAYCORE_BANKS"):
                banks = await load_banks(engine)
                app.state.banks = banks
            async with routers_lifespan(served) as state:
                yield state
        finally:
            if banks is not None:
                async with engine.begin() as conn:
                    await gateways.save_bank_health(conn, banks)
                for code in banks.codes:
                    close = getattr(banks.get(code), "aclose", None)
                    if close is not None:
                        await close()
            await engine.dispose()

    app.router.lifespan_context = lifespan
    freeze_startup_heap()  # the app is built: what exists now lives as long as we do
    return app


@apikeys_app.command("create")
def apikeys_create(
    merchant: Annotated[str, typer.Argument(help="the merchant the key acts for")],
    scope: Annotated[list[str], typer.Option(
        "--scope", "-s", help="a scope to grant (repeat); e.g. payments:write")],
    name: str = typer.Option("", help="a label for the key"),
    holder: str | None = typer.Option(None, help="the staff user the key belongs to: "
                                      "four-eyes checks (payout approval, account "
                                      "verification, loan review) compare people, so one "
                                      "person's keys and console sign-in are one person"),
) -> None:
    """Issue a key; its secret is printed once and never stored."""
    from paycore.api import keys  # the API package imports FastAPI: only when used

    four_eyes = [s for s in ("payouts:write", "payouts:approve", "lending:review")
                 if keys.grants(scope, s)]
    if four_eyes and not (holder and holder.strip()):
        # four eyes compare the people behind keys: a maker's key and a checker's key must
        # each name one (a holder-less maker key and its holder's named checker key would
        # pass as two people)
        errors.print(f"[red]HolderRequired[/red]: a key that may {' or '.join(four_eyes)} "
                     "(enter account details, ask for payouts or move an overpayment; "
                     "verify or approve them) "
                     "belongs to one person: add --holder <name>")
        raise typer.Exit(2)

    async def go(conn: AsyncConnection) -> keys.IssuedKey:
        if holder is not None and holder.strip():
            # a holder is a staff user, by the same name: four eyes then compare one
            # `user:<name>` whether the person acts through a key, the console or the CLI
            from paycore.console import staff

            # held until the key is committed: a `staff disable` at the same moment
            # either sees the new key and revokes it, or commits first and is seen here
            person = await staff.get_user(conn, keys.normal_holder(holder), hold=True)
            if person is None or person.status != "active":
                raise keys.InvalidMerchant(
                    f"key holder {holder!r} is no active staff user: a holder is the staff "
                    "user the key belongs to (paycore staff add NAME --role ROLE first), so "
                    "that one person is one name to four eyes")
        return await keys.create_api_key(conn, merchant, scope, name=name, holder=holder)
    try:
        issued = in_transaction(go)
    except (keys.InvalidScope, keys.InvalidMerchant) as exc:
        errors.print(f"[red]{type(exc).__name__}[/red]: {exc}")
        raise typer.Exit(2) from None
    console.print(f"key {issued.key.id} for {issued.key.merchant_id} "
                  f"({' '.join(issued.key.scopes)}); the secret is shown only now:")
    console.print(issued.secret, markup=False, highlight=False, soft_wrap=True)


@apikeys_app.command("list")
def apikeys_list(merchant: str | None = typer.Option(None, help="only this merchant")) -> None:
    """List keys (never their secrets)."""
    from rich.table import Table  # rich loads with the commands that print tables

    from paycore.api import keys

    table = Table("id", "merchant", "name", "scopes", "created", "revoked")
    for key in read_only(lambda conn: keys.list_api_keys(conn, merchant)):
        table.add_row(key.id, key.merchant_id, key.name, " ".join(key.scopes),
                      key.created_at.isoformat(timespec="seconds"),
                      key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "")
    console.print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: str = typer.Argument(..., help="the key's id (pck_<id>_...)")) -> None:
    """Revoke a key: refused at once by new API processes, and by running ones (which
    trust a key they verified for PAYCORE_API_KEY_CACHE_SECONDS, 5 by default) within
    that many seconds."""
    from paycore.api import keys

    key = in_transaction(lambda conn: keys.revoke_api_key(conn, key_id))
    if key is None:
        errors.print(f"[red]no API key {key_id}[/red]")
        raise typer.Exit(2)
    console.print(f"revoked {key.id} of {key.merchant_id} (running API servers refuse it "
                  "within PAYCORE_API_KEY_CACHE_SECONDS)")


@idempotency_app.command("purge")
def idempotency_purge(
    older_than_days: Annotated[int, typer.Option(min=1, help="keep the last N days")] = 7,
) -> None:
    """Forget finished Idempotency-Key records older than N days (a retry after that is
    a new request)."""
    from paycore.api import idempotency

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
    gone = run(lambda engine: idempotency.purge(engine, cutoff))
    console.print(f"forgot {gone} idempotency records from before {cutoff:%Y-%m-%d %H:%M} UTC")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(apikeys_app, name="apikeys")
    app.add_typer(idempotency_app, name="idempotency")



