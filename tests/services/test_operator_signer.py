"""The operator key's signers: the development key file and the transit client (tested
against `tests/support/transit_standin.py`, a stand-in speaking the transit API: OpenBao
cannot be installed on this machine), and their configuration."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from solders.keypair import Keypair

from services.common.errors import ServiceError
from services.cpi_manager.signer import KeyFileSigner, TransitSigner, signer_for
from tests.support.transit_standin import TransitStandIn
from vault_client.config import ConfigError, OperatorSignerSettings, Settings
from vault_client.keyfile import write_key_file

MESSAGE = b"an operator's message"


async def test_the_key_file_must_be_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = Keypair()
    path = tmp_path / "operator.json"
    write_key_file(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    signer = KeyFileSigner(str(path))
    assert signer.public_key == key.pubkey()
    assert (await signer.sign(MESSAGE)).verify(key.pubkey(), MESSAGE)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        KeyFileSigner(str(path))
    path.chmod(0o600)
    path.write_text("[1, 2, 3]")
    with pytest.raises(ConfigError, match="not a Solana keypair file"):
        KeyFileSigner(str(path))


async def test_the_transit_signer_signs_without_ever_holding_the_key(tmp_path: Path) -> None:
    key = Keypair()
    token = tmp_path / "token"
    token.write_text("s.test-token\n")
    async with TransitStandIn({"operator": key}).running() as standin:
        settings = OperatorSignerSettings(kind="transit", key_file="", transit_url=standin.url,
                                          transit_key="operator", transit_token_file=str(token), transit_ca_file="")
        signer = await signer_for(settings)
        assert isinstance(signer, TransitSigner)
        try:
            assert signer.public_key == key.pubkey()
            signature = await signer.sign(MESSAGE)
            assert signature.verify(key.pubkey(), MESSAGE) and standin.signed == 1
            assert not any(isinstance(v, Keypair) for v in vars(signer).values())
            # a rotated token file is read again at the next call; a wrong one is refused
            token.write_text("s.wrong")
            with pytest.raises(ServiceError) as refused:
                await signer.sign(MESSAGE)
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE and "HTTP 403" in refused.value.message
            assert "s.wrong" not in refused.value.message
            token.write_text("s.test-token")
            # a signature that does not verify is never used
            standin.corrupt_signatures = True
            with pytest.raises(ServiceError, match="does not verify"):
                await signer.sign(MESSAGE)
        finally:
            await signer.close()
        standin.key_type = "ecdsa-p256"
        with pytest.raises(ConfigError, match="ed25519"):
            await signer_for(settings)
    # the signer is gone: UNAVAILABLE, saying which
    with pytest.raises(ServiceError) as gone:
        await signer_for(settings)
    assert gone.value.code == grpc.StatusCode.UNAVAILABLE and "transit signer" in gone.value.message


def test_signer_configuration_fails_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CV_PROFILE", "development")
    for name in ("OPERATOR_SIGNER", "OPERATOR_KEY_FILE", "OPERATOR_TRANSIT_URL", "OPERATOR_TRANSIT_KEY",
                 "OPERATOR_TRANSIT_TOKEN_FILE", "OPERATOR_TRANSIT_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(service="cpi_manager").operator_signer.effective_kind == ""
    monkeypatch.setenv("OPERATOR_SIGNER", "transit")
    with pytest.raises(ConfigError, match="OPERATOR_TRANSIT_URL, OPERATOR_TRANSIT_KEY, OPERATOR_TRANSIT_TOKEN_FILE"):
        Settings(service="cpi_manager")
    monkeypatch.setenv("OPERATOR_SIGNER", "hsm")
    with pytest.raises(ConfigError, match="OPERATOR_SIGNER must be one of key_file, transit"):
        Settings(service="cpi_manager")
    monkeypatch.delenv("OPERATOR_SIGNER")
    monkeypatch.setenv("OPERATOR_KEY_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match=r"OPERATOR_KEY_FILE=.* does not exist"):
        Settings(service="cpi_manager")
    write_key_file(tmp_path / "missing.json")
    assert Settings(service="cpi_manager").operator_signer.effective_kind == "key_file"
    # production keeps the key out of the process: a key file is refused
    problems = OperatorSignerSettings(kind="", key_file=str(tmp_path / "missing.json"), transit_url="",
                                      transit_key="", transit_token_file="", transit_ca_file="").problems("production")
    assert any("key_file is for development" in p for p in problems)
    plain_http = OperatorSignerSettings(kind="transit", key_file="", transit_url="http://signer:8200",
                                        transit_key="op", transit_token_file="", transit_ca_file="")
    problems = plain_http.problems("production")
    assert any("https://" in p for p in problems)
