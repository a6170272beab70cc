"""`paycore serve --demo` (#19): the server on the demo's books gives the console a staff
user of each role, prints them with their password and where to browse, and a printed user
signs in (SQLite file: the demo's own store)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from paycore.cli import app

runner = CliRunner()


def test_serve_demo_prints_a_user_per_role_who_can_sign_in(tmp_path) -> None:
    env = {**os.environ, "PAYCORE_LOG_LEVEL": "WARNING",
           "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/paycore-demo.sqlite"}
    env.pop("PAYCORE_BANKS", None)
    # the demo's books: here only migrated (the full story is test_cli's demo test)
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    paycore = str(Path(sys.executable).parent / "paycore")
    server = subprocess.Popen([paycore, "serve", "--demo", "--port", str(port)], cwd=tmp_path,
                              env={**env, "COLUMNS": "200"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        printed = ""
        deadline = time.monotonic() + 60
        while "Open the console" not in printed and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            printed += line
        assert f"http://127.0.0.1:{port}/console" in printed, printed
        rows = re.findall(r"^\s*(\w+\.demo)\s+(\w+)\s+(\S+)\s*$",
                          re.sub(r"[│┃]", " ", printed), flags=re.MULTILINE)
        users = {name: password for name, _, password in rows}
        roles = {role for _, role, _ in rows}
        assert roles == {"risk", "finance", "payments", "controller", "viewer"}, printed
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=base) as client:
            page = client.get("/console/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            signed_in = client.post("/console/login", data={
                "username": "risk.demo", "password": users["risk.demo"], "csrf_token": token})
            assert signed_in.status_code == 303
            home = client.get("/console")
            assert home.status_code == 200 and "Today's work" in home.text
    finally:
        server.terminate()
        server.wait(timeout=20)
