"""Several server processes (issue 13): the /lot results, the uploaded sources and the form
secret live in a folder shared by the workers, so a file validated by one process downloads
through another; ``qpv-geo serve --workers 2`` serves it for real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from qpv_geo.settings import Settings
from qpv_geo.web import create_app
from qpv_geo.web._store import DiskStore, StoreUnavailable, shared_secret

ROOT = Path(__file__).resolve().parent.parent
CSV = b"porteur;latitude;longitude\nAsso A;45,4335;4,3790\nAsso B;45,4561;4,4067\n"


def _link(html: str) -> str:
    return html.split('href="/lot/resultat/')[1].split('"')[0]


def test_a_result_made_by_one_process_downloads_through_another(tmp_path) -> None:
    pytest.importorskip("qpv_geo.batch")
    settings = Settings.from_env(dossier_serveur=str(tmp_path / "serveur"))
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        # the form token of a page rendered by A is accepted by B (same secret)
        page = a.get("/lot").text
        jeton = page.split('name="jeton" value="')[1].split('"')[0]
        r = b.post("/lot", files={"fichier": ("sites.csv", CSV, "text/csv")},
                   data={"jeton": jeton}, headers={"Origin": "http://testserver"})
        assert r.status_code == 200, r.text[:500]
        link = _link(r.text)
        # B validated it: A downloads it, byte for byte
        mine, theirs = b.get("/lot/resultat/" + link), a.get("/lot/resultat/" + link)
        assert theirs.status_code == 200 and theirs.content == mine.content
        assert b"QN04214M" in theirs.content
        # the uploaded source too: A re-runs B's upload with other columns
        source = r.text.split('name="source" value="')[1].split('"')[0]
        r = a.post("/lot", data={"source": source, "col_porteur": "porteur",
                                 "col_lat": "latitude", "col_lon": "longitude"})
        assert r.status_code == 200 and "sites.csv vérifié : 2 lignes" in r.text


def test_a_forged_token_is_still_refused_by_every_process(tmp_path) -> None:
    settings = Settings.from_env(dossier_serveur=str(tmp_path / "serveur"))
    other = Settings.from_env(dossier_serveur=str(tmp_path / "autre"))
    with TestClient(create_app(settings)) as a, TestClient(create_app(other)) as c:
        page = c.get("/lot").text  # a server with another folder: another secret
        jeton = page.split('name="jeton" value="')[1].split('"')[0]
        r = a.post("/lot", files={"fichier": ("sites.csv", CSV, "text/csv")},
                   data={"jeton": jeton}, headers={"Origin": "http://testserver"})
        assert r.status_code == 403 and "Formulaire expiré" in r.text


def test_store_keeps_the_announced_retention(tmp_path) -> None:
    store = DiskStore(tmp_path / "r", ttl_s=3600, max_entries=3)
    first = store.put([("a.csv", b"1", "text/csv"), ("a.json", b"{}", "application/json")])
    assert store.get(first, 1) == ("a.json", b"{}", "application/json")
    assert store.get(first, 2) is None and store.get("../../etc/passwd", 0) is None
    later = DiskStore(tmp_path / "r", ttl_s=3600, max_entries=3)  # another process
    tokens = [later.put([(f"{i}.csv", b"x", "text/csv")]) for i in range(3)]
    assert store.get(first, 0) is None  # only the last 3
    assert all(store.get(t, 0) is not None for t in tokens)
    meta = tmp_path / "r" / tokens[0] / "meta.json"
    data = json.loads(meta.read_text(encoding="utf-8"))
    data["cree"] -= 3601
    meta.write_text(json.dumps(data), encoding="utf-8")
    assert store.get(tokens[0], 0) is None  # older than an hour
    assert not list((tmp_path / "r").glob(".en-cours-*"))  # nothing half-written left
    assert "une heure" in store.retention_text() and "3 derniers" in store.retention_text()


def test_unwritable_store_says_so_in_french(tmp_path) -> None:
    blocker = tmp_path / "fichier"
    blocker.write_text("pas un dossier", encoding="utf-8")
    with pytest.raises(StoreUnavailable) as info:
        DiskStore(blocker / "r").put([("a.csv", b"1", "text/csv")])
    assert "ne peut pas conserver" in str(info.value) and info.value.hint


def test_the_form_secret_is_shared_or_configured(tmp_path) -> None:
    one, two = shared_secret(tmp_path / "s"), shared_secret(tmp_path / "s")
    assert one == two and len(one) >= 32
    assert shared_secret(tmp_path / "autre") != one
    assert shared_secret(tmp_path / "s", "mon-secret") == b"mon-secret"


def test_worker_sockets_send_small_responses_at_once() -> None:
    """On the socket the workers' supervisor binds, small responses leave at once: asyncio does
    not always set TCP_NODELAY on a shared listening socket, our protocol does, or each response
    of a kept-alive connection waits ≈ 40 ms (Nagle + delayed ACK)."""
    import threading

    import uvicorn

    from qpv_geo.web.server import timed_protocol

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=timed_protocol(5),
                            log_level="error", lifespan="off")
    listener = config.bind_socket()  # as the workers' supervisor makes it
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            times = []
            for _ in range(12):
                t0 = time.perf_counter()
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                data = b""
                while not data.endswith(b"ok"):
                    data += s.recv(1000)
                times.append(time.perf_counter() - t0)
        times.sort()
        assert times[len(times) // 2] < 0.030, times  # 40 ms each with Nagle's stalls
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_with_two_workers_shares_results(tmp_path) -> None:
    """``qpv-geo serve --workers 2``: every upload, on a new connection, downloads on another
    new connection (the kernel spreads connections over both processes)."""
    pytest.importorskip("qpv_geo.batch")
    import httpx

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QPV_GEO_GEOCODER": "demo"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "qpv_geo", "serve", "--port",
                                 str(port), "--workers", "2"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/api/v1/donnees", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        for _ in range(6):
            with httpx.Client(base_url=base, timeout=60) as c:  # a new connection each time
                r = c.post("/lot", files={"fichier": ("sites.csv", CSV, "text/csv")})
            assert r.status_code == 200, r.text[:500]
            link = _link(r.text)
            with httpx.Client(base_url=base, timeout=60) as c:
                d = c.get("/lot/resultat/" + link)
            assert d.status_code == 200 and b"QN04214M" in d.content
        folder = Path(os.environ["QPV_GEO_CACHE_DIR"]) / "web" / f"serveur-{port}"
        assert len(list((folder / "resultats").iterdir())) == 6
        assert "2 processus" in log.read_text(encoding="utf-8")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
