"""vaultctl — talk to the running system.

  vaultctl demo [--json]        run the exchange's two-trader story end to end, through gRPC
  vaultctl faucet OWNER AMOUNT  mint test USDT (localnet only)
  vaultctl vault OWNER          a vault, from VaultManager
  vaultctl tvl                  total value locked, from VaultMonitor

Endpoints come from the environment (SOLANA_RPC_URL, VAULT_MANAGER_ADDR, CPI_MANAGER_ADDR,
MONITOR_ADDR, DATABASE_URL, GATEWAY_PORT), defaulting to what `make up` starts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable

import grpc
from collateral_vault.v1 import vault_manager_pb2, vault_monitor_pb2
from google.protobuf.json_format import MessageToDict
from solders.pubkey import Pubkey

from vaultctl.clients import Clients, Endpoints

USDT = 10**6


async def with_clients(action: Callable[[Clients], Awaitable[int]]) -> int:
    clients = Clients(Endpoints.from_settings())
    try:
        return await action(clients)
    except grpc.aio.AioRpcError as exc:
        print(f"vaultctl: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    finally:
        await clients.close()


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="vaultctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="run the demo scenario")
    demo_parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    faucet = sub.add_parser("faucet", help="mint test USDT (localnet)")
    faucet.add_argument("owner")
    faucet.add_argument("amount", type=float)
    vault = sub.add_parser("vault", help="show a vault")
    vault.add_argument("owner")
    sub.add_parser("tvl", help="show TVL")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from vaultctl import demo  # localnet's faucet: not in the production image (Dockerfile)

        async def run_demo(clients: Clients) -> int:
            if not args.json:
                print("vaultctl demo: two traders, every step through the gRPC services")
            result = await demo.run(clients, quiet=args.json)
            if args.json:
                print(json.dumps(result))
            else:
                demo.print_summary(result)
            return 0 if all(r["agree"] for r in result["traders"].values()) else 2
        return asyncio.run(with_clients(run_demo))
    if args.command == "faucet":
        from localnet.faucet import fund

        try:
            owner = Pubkey.from_string(args.owner)
        except ValueError:
            parser.error(f"{args.owner!r} is not a valid public key")
        account, signature = asyncio.run(fund(Endpoints.from_settings().rpc_url, owner, round(args.amount * USDT)))
        print(f"minted {args.amount} USDT to {account} ({signature})")
        return 0
    if args.command == "vault":
        async def show(clients: Clients) -> int:
            reply = await clients.vaults.GetVault(vault_manager_pb2.GetVaultRequest(owner=args.owner))
            print(json.dumps(MessageToDict(reply.vault, preserving_proto_field_name=True), indent=2))
            return 0
        return asyncio.run(with_clients(show))

    async def tvl(clients: Clients) -> int:
        reply = await clients.monitor.GetTvl(vault_monitor_pb2.GetTvlRequest())
        verdict = ("agreed" if reply.chain_matches else "found mismatches") if reply.reconciled_at else "none yet"
        print(f"TVL {reply.total / USDT:,.2f} USDT (locked {reply.locked / USDT:,.2f}, available "
              f"{reply.available / USDT:,.2f}) in {reply.vault_count} vaults at slot {reply.slot}; last "
              f"reconciliation: {verdict}")
        return 0
    return asyncio.run(with_clients(tvl))


if __name__ == "__main__":
    sys.exit(main())
