"""`python -m localnet` runs the node; `python -m localnet faucet OWNER AMOUNT` mints test
USDT to OWNER's associated token account with a real mint_to transaction."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import uvloop

from localnet import genesis
from localnet.node import Node, NodeConfig
from vault_client import heap


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def parse_node_args(argv: list[str]) -> NodeConfig:
    parser = argparse.ArgumentParser(prog="python -m localnet", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("LOCALNET_HOST", "127.0.0.1"))
    parser.add_argument("--rpc-port", type=int, default=_env_int("LOCALNET_RPC_PORT", 8899))
    parser.add_argument("--ws-port", type=int, default=_env_int("LOCALNET_WS_PORT", 8900))
    parser.add_argument("--slot-ms", type=int, default=_env_int("LOCALNET_SLOT_MS", 400),
                        help="slot duration in milliseconds (default 400)")
    parser.add_argument("--finality-depth", type=int, default=_env_int("LOCALNET_FINALITY_DEPTH", 32),
                        help="slots from processed to finalized (default 32)")
    parser.add_argument("--ledger", type=Path, default=os.environ.get("LOCALNET_LEDGER") or None,
                        help="keep accounts and history in this directory across restarts")
    parser.add_argument("--token", choices=["p-token", "classic"], default=os.environ.get("LOCALNET_TOKEN", "p-token"),
                        help="SPL Token implementation (default p-token, as LiteSVM ships)")
    parser.add_argument("--operator", default=os.environ.get("LOCALNET_OPERATOR") or None,
                        help="the exchange operator's public key for position_manager's ExchangeConfig "
                             "(default: the development key in localnet/dev_keys)")
    parser.add_argument("--exit-delay-slots", type=int,
                        default=_env_int("LOCALNET_EXIT_DELAY_SLOTS", genesis.DEV_EXIT_DELAY_SLOTS),
                        help="slots the operator has to answer an exit request "
                             f"(default {genesis.DEV_EXIT_DELAY_SLOTS})")
    parser.add_argument("--config-delay-slots", type=int,
                        default=_env_int("LOCALNET_CONFIG_DELAY_SLOTS", genesis.DEV_CONFIG_DELAY_SLOTS),
                        help="slots a configuration change waits before it applies "
                             f"(default {genesis.DEV_CONFIG_DELAY_SLOTS})")
    args = parser.parse_args(argv)
    return NodeConfig(args.host, args.rpc_port, args.ws_port, args.slot_ms, args.finality_depth, args.ledger,
                      args.token, args.operator, args.exit_delay_slots, args.config_delay_slots)


async def run_node(config: NodeConfig) -> None:
    node = Node(config)
    await node.start()
    heap.freeze_startup_heap()  # the genesis stays alive for good: out of the cyclic collector's sight
    heap.freeze_survivors_of_full_collections()  # and so does every landed transaction
    print(f"localnet: RPC {node.rpc_url}  PubSub {node.ws_url}  slot {config.slot_ms} ms"
          + (f"  ledger {config.ledger_dir}" if config.ledger_dir else ""), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await node.stop()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    if argv[:1] == ["faucet"]:
        from localnet.faucet import main as faucet_main

        return faucet_main(argv[1:])
    # uvloop unless EVENT_LOOP=asyncio, as the services (localnet imports none of their code)
    loop = os.environ.get("EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if loop not in ("uvloop", "asyncio"):
        raise SystemExit(f"EVENT_LOOP={loop!r}: expected one of uvloop, asyncio")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else None) as runner:
        runner.run(run_node(parse_node_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
