"""``bin/run_all.py`` (make run): the ports it reads and what it tells about them."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bin" / "run_all.py"


def load(monkeypatch, **env: str):
    for name in (
        "PORT",
        "SIMULATOR_PORT",
        "GATEWAY_SMS_URL",
        "GATEWAY_PUSH_URL",
        "GATEWAY_HTTP_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("run_all_under_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_simulator_port_moves_the_gateway_urls_unless_they_are_set(monkeypatch):
    assert load(monkeypatch).simulator_gateway_urls() == {}
    moved = load(monkeypatch, SIMULATOR_PORT="9025", GATEWAY_HTTP_URL="http://127.0.0.1:7/x")
    assert moved.simulator_gateway_urls() == {
        "GATEWAY_SMS_URL": "http://127.0.0.1:9025/sms",
        "GATEWAY_PUSH_URL": "http://127.0.0.1:9025/push",
    }


def test_a_port_in_use_names_the_variable_that_moves_it(monkeypatch, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        module = load(monkeypatch, PORT=str(port))
        assert module.main() == 2
    error = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in error
    assert f"set PORT to use another, e.g. PORT={port + 1} make run" in error
