"""Act 5: the merchant hears about its payments without polling — a webhook endpoint is
registered for the demo merchant (its secret sealed under the key ring), pointing at a
small receiver on loopback that checks every signature as a merchant's server would; the
dispatch runs as production runs it, a `webhooks.dispatch` job taken by the in-process
worker (`paycore worker --once`), and each event arrives signed.

Expects the checkout act to have run (its events, the key ring it installs).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateways.sandbox.server import LoopbackServer
from paycore import jobs, webhooks
from paycore.demo_acts.checkout import MERCHANT
from paycore.demo_acts.context import DemoContext

#: the demo's receiver is on loopback: allowed here, in code, never by a merchant's request
SETTINGS = webhooks.WebhookSettings(allow_private=True, timeout=5)
SHOWN = 4


@dataclass
class MerchantReceiver:
    """What a merchant's order system runs: verify `Paycore-Signature`, drop duplicates by
    event id, answer 2xx."""
    secret: str = ""
    received: list[tuple[str, str, bool]] = field(default_factory=list)  # (type, id, valid)
    seen: set[str] = field(default_factory=set)
    bad_signatures: int = 0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        valid = webhooks.verify_signature(request.headers.get(webhooks.SIGNATURE_HEADER, ""),
                                          body, self.secret)
        if not valid:
            self.bad_signatures += 1
            return Response(status_code=400)
        event: dict[str, Any] = json.loads(body)
        if event["id"] not in self.seen:
            self.seen.add(event["id"])
            self.received.append((event["type"], event["id"], valid))
        return Response(status_code=204)


async def run(ctx: DemoContext) -> None:
    ctx.step("Webhooks: the merchant's server hears of each payment, signed")
    receiver = MerchantReceiver()
    server = LoopbackServer(Starlette(routes=[Route("/hooks", receiver.hook, methods=["POST"])]),
                            name="merchant-hooks")
    base = await server.start()
    try:
        async with ctx.engine.begin() as conn:
            endpoint, receiver.secret = await webhooks.create_endpoint(
                conn, MERCHANT, f"{base}/hooks", settings=SETTINGS,
                description="the demo merchant's order system")
            await jobs.enqueue(conn, "webhooks.dispatch", {})
        ctx.console.print(f"  endpoint {endpoint.id} for {MERCHANT} -> {endpoint.url} "
                          "(secret sealed at rest, shown once to the merchant)")
        worker = jobs.Worker(ctx.engine, kinds=("webhooks.dispatch",),
                             services={"webhook_settings": SETTINGS})
        ran = await worker.drain()
        ctx.console.print(f"  $ paycore worker --once   ({ran} job: webhooks.dispatch)")
        for topic, event_id, valid in receiver.received[:SHOWN]:
            ctx.console.print(f"  received {topic:<18} {event_id}  "
                              f"{'signature valid' if valid else 'SIGNATURE INVALID'}")
        kinds = Counter(topic for topic, _, _ in receiver.received)
        verdict = ("every signature valid" if receiver.bad_signatures == 0
                   else f"[red]{receiver.bad_signatures} refused: bad signature[/red]")
        ctx.console.print(f"  {len(receiver.received)} events received, {verdict}: "
                          + ", ".join(f"{n} {t}" for t, n in sorted(kinds.items())))
    finally:
        await server.stop()
