"""A real browser through the ingress: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) opens a page served by a web app behind an
edge, and the page's WebSocket echoes through the ingress and the edge's stream.
Hostnames map to 127.0.0.1 with ``--host-resolver-rules``."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from frontier.sdk import Edge

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver when missing (a fresh CI machine)."""
    if os.path.exists(CHROMIUM) and os.path.exists(DRIVER):
        return
    if shutil.which("apt-get") is None:
        pytest.fail("chromium is not installed and there is no apt-get to install it")
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], check=True, capture_output=True,
                   timeout=900, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


@pytest.fixture
def browser():
    _ensure_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--host-resolver-rules=MAP *.edges.test 127.0.0.1", "--no-proxy-server"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_chromium_opens_the_edge_app_and_its_websocket_echoes(ingress_gateway, webapp, clients, browser) -> None:
    app = {"id": "device-ui", "frontends": [{"hostname": "*.edges.test"}],
           "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "ui"}}}
    gw = ingress_gateway({"apps": [app]})
    clients(Edge, gw.edge_addr, edge_id=31337, expose={"ui": webapp.addr})
    browser.get(f"http://31337.edges.test:{gw.http_port}/")
    assert browser.find_element(By.ID, "title").text == "hello from the edge"
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "ws").text != "waiting")
    assert browser.find_element(By.ID, "ws").text == "echo: ping-through-ingress"
    # an unknown edge: the browser shows the readable error page
    browser.get(f"http://999.edges.test:{gw.http_port}/")
    assert "502 Bad Gateway" in browser.find_element(By.TAG_NAME, "h1").text
    assert "EDGE_NOT_ONLINE" in browser.page_source
