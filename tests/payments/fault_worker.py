"""The fault tests' worker: runs the payment flow in forked children that SIGKILL themselves at a chosen
point between a provider call and its commit. `python -m tests.payments.fault_worker --help`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta

import httpx

from ledger.db.engine import Database
from ledger.services import clock
from ledger.services.payments import crashpoints
from ledger.services.payments.checkout import start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.terminal import start_terminal_sale
from ledger.services.payments.webhooks import receive_webhook
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings, load_settings
from providers.config import parse_providers_config
from providers.registry import ProviderRegistry
from tests.providers.conftest import ENV
from tests.stamps.conftest import SECRETS

PROVIDERS = """
[variants.sandbox-online]
provider = "sandbox"
mode = "online"
base_url = "{sandbox}"
consulates = ["*"]
currencies = ["EUR"]
secrets = {{ api_key = "KEY", webhook_secrets = ["HOOK"] }}
timeouts = {{ read = 2.0 }}

[variants.sandbox-counter]
provider = "sandbox"
mode = "terminal"
base_url = "{sandbox}"
consulates = ["FR-PAR"]
currencies = ["EUR"]
secrets = {{ api_key = "KEY", webhook_secrets = ["HOOK"] }}
timeouts = {{ read = 2.0 }}
"""


@dataclass(frozen=True)
class Setup:
    """Read once in the worker, before it forks: each child only connects and runs."""

    database_url: str
    sandbox: str
    settings: Settings
    registry: ProviderRegistry  # its clients are built (TLS contexts and all) but have opened nothing
    keys: StampKeys  # the stamp key already opened (Argon2id once, not once per child)
    cardholder: httpx.AsyncClient  # plays the cardholder on the hosted page


def _setup(database_url: str, sandbox: str) -> Setup:
    settings = load_settings(environ={})
    config = parse_providers_config(PROVIDERS.format(sandbox=sandbox), source="fault-worker")
    registry = ProviderRegistry(config, env=ENV)
    for variant in config.variants:
        registry.get(variant)
    keys = StampKeys(settings, SECRETS)
    database = Database.from_url(database_url, pool_size=1)
    with database.read() as session:
        now = clock.now()
        keys.stamp_signer(
            session, now=now, valid_until=now + timedelta(days=settings.service.stamps.validity_days)
        )
    database.dispose()  # no connection crosses the fork
    return Setup(database_url, sandbox, settings, registry, keys, httpx.AsyncClient(timeout=5))


async def _flow(setup: Setup, flow: str, run: int) -> None:
    settings, sandbox, registry = setup.settings, setup.sandbox, setup.registry
    database = Database.from_url(setup.database_url, pool_size=2)
    try:
        payments = Payments(database=database, settings=settings, registry=registry, keys=setup.keys)
        if flow == "terminal":
            await start_terminal_sale(
                payments, variant="sandbox-counter", consulate="FR-PAR", fee_codes=("PASSPORT",),
                terminal_id=f"T-{run}", cashier="fault-worker",
            )  # fmt: skip
            return
        started = await start_online_payment(
            payments, consulate="FR-PAR", fee_codes=("PASSPORT", "CNIE"), variant_name="sandbox-online"
        )
        if started.next_action is None:
            return
        client = setup.cardholder
        await client.post(started.next_action.url, data={"decision": "approve"})
        listed = (await client.get(f"{sandbox}/sandbox/webhooks")).json()["data"]
        for item in listed:
            if item["reference"] == started.reference:
                for _ in range(2):  # every delivery twice
                    await receive_webhook(payments, "sandbox-online", item["headers"], item["body"].encode())
    finally:
        database.dispose()


def _child(setup: Setup, flow: str, run: int, kill_at: int) -> None:
    hits = 0

    def hook(point: str) -> None:
        nonlocal hits
        hits += 1
        if hits == kill_at:
            print(f"KILL {json.dumps({'run': run, 'point': point})}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    crashpoints.install(hook)
    asyncio.run(_flow(setup, flow, run))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    setup = _setup(args.database, args.sandbox)
    for run in range(args.runs):
        flow = "terminal" if run % 2 else "online"
        # Crash points in order: before-call, after-call, before-commit, then (online) one per webhook
        # commit: any of them falls inside the flow, so every run is killed.
        kill_at = rng.randint(1, 3 if flow == "terminal" else 4)
        pid = os.fork()
        if pid == 0:
            try:
                _child(setup, flow, run, kill_at)
            except BaseException as error:  # the child reports, never returns into the parent's loop
                print(f"ERROR {json.dumps({'run': run, 'error': repr(error)})}", flush=True)
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print(
            f"RESULT {json.dumps({'run': run, 'flow': flow, 'kill_at': kill_at, 'killed': killed})}",
            flush=True,
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
