"""services/vault_manager/perf_handler_path.py (bench_grpc_wrapper's part without sockets)
times what each server's calls run in Python: the paths must answer as the servers do
(GetVault through vault_manager's own registration and wrapper, counted as an OK call like
any served one), or the timings would describe something else."""

from __future__ import annotations

from collateral_vault.v1 import common_pb2, vault_manager_pb2
from solders.pubkey import Pubkey

from bench.probes import run_probe
from services.common.grpc_metrics import GRPC_SERVER
from services.vault_manager import perf_handler_path as handler_path


def test_each_path_answers_as_its_server_does() -> None:
    owner = Pubkey.new_unique()
    paths = handler_path.call_paths(owner)
    request = vault_manager_pb2.GetVaultRequest(owner=str(owner)).SerializeToString()
    assert paths["bare_echo"](request) == request and paths["wrapped_echo"](request) == request
    ok_before = GRPC_SERVER.service("vault_manager").method("GetVault").codes.get("OK", 0)
    answer = vault_manager_pb2.GetVaultResponse.FromString(paths["get_vault"](request))
    assert answer.vault.owner == str(owner) and answer.vault.source == common_pb2.DATA_SOURCE_CACHE
    assert GRPC_SERVER.service("vault_manager").method("GetVault").codes["OK"] == ok_before + 1


def test_measure_reports_each_path_per_call() -> None:
    result = handler_path.measure(Pubkey.new_unique(), calls=200, passes=3)
    assert result["calls_per_pass"] == 200 and result["passes"] == 3
    assert set(result["us_per_call"]) == {"bare_echo", "wrapped_echo", "get_vault"}
    assert all(us > 0 for us in result["us_per_call"].values())


def test_the_benchmark_reads_its_result_from_its_own_process() -> None:
    """As bench_grpc_wrapper runs it: `python -m ...perf_handler_path OWNER CALLS PASSES`,
    the result as JSON on its standard output."""
    result = run_probe("services.vault_manager.perf_handler_path", str(Pubkey.new_unique()), "200", "3")
    assert result["calls_per_pass"] == 200 and result["passes"] == 3
    assert set(result["us_per_call"]) == {"bare_echo", "wrapped_echo", "get_vault"}
