"""Debian's ``pebble`` (a real ACME server, RFC 8555) and ``pebble-challtestsrv`` (as
its DNS: every name resolves to 127.0.0.1) on free loopback ports, for the ACME
tests. The packages are installed when missing (a fresh CI machine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import requests

from tests.gateway import free_port, wait_port
from tests.security.certs import issue, make_ca


def ensure_pebble() -> None:
    """``apt-get install pebble`` unless it is there."""
    if shutil.which("pebble") and shutil.which("pebble-challtestsrv"):
        return
    if shutil.which("apt-get") is None:
        raise RuntimeError("pebble is not installed and there is no apt-get to install it")
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-q", "pebble"], check=True, capture_output=True, timeout=600,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


class Pebble:
    """A pebble whose HTTP-01 checks go to ``http_port`` on 127.0.0.1."""

    def __init__(self, workdir: Path, http_port: int) -> None:
        ensure_pebble()
        workdir.mkdir(parents=True, exist_ok=True)
        ca = make_ca(workdir, "pebble-tls-ca", "pebble listener CA")
        server = issue(ca, workdir, "pebble-tls", "localhost", dns=("localhost",), ips=("127.0.0.1",))
        #: the CA file that verifies pebble's own HTTPS listener (``ingress.acme.ca_bundle``)
        self.tls_ca = str(ca.cert_path)
        self.port, self.mgmt_port, self.dns_port = free_port(), free_port(), free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(server.cert_path), "privateKey": str(server.key_path),
            "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        (workdir / "pebble.json").write_text(json.dumps(config))
        self._log = open(workdir / "pebble.log", "ab")
        self.dns = subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}", "-defaultIPv4", "127.0.0.1",
             "-defaultIPv6", ""], stdout=self._log, stderr=subprocess.STDOUT)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        self.proc = subprocess.Popen(["pebble", "-config", str(workdir / "pebble.json"), "-dnsserver",
                                      f"127.0.0.1:{self.dns_port}"], stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.workdir = workdir
        wait_port("127.0.0.1", self.port)
        wait_port("127.0.0.1", self.mgmt_port)

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def root_pem(self) -> str:
        """The root that signs what pebble issues (new on every pebble start)."""
        return requests.get(f"https://127.0.0.1:{self.mgmt_port}/roots/0", verify=self.tls_ca, timeout=10).text

    def log(self) -> str:
        return (self.workdir / "pebble.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in (self.proc, self.dns):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._log.close()
