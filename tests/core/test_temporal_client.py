"""temporal/client.py: which TLS a connection to an existing Temporal uses."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from temporalio.service import TLSConfig

from core.settings import Settings
from temporal.client import tls_config


def test_plain_unless_asked(tmp_path: Path) -> None:
    assert tls_config(Settings(data_dir=tmp_path)) is False


def test_an_api_key_implies_tls(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, temporal_api_key=SecretStr("key"))
    assert tls_config(settings) is True


def test_mutual_tls_reads_the_pem_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    config = tls_config(Settings(data_dir=tmp_path, temporal_tls_cert=cert, temporal_tls_key=key))
    assert isinstance(config, TLSConfig)
    assert config.client_cert == b"CERT" and config.client_private_key == b"KEY"
    assert config.server_root_ca_cert is None
