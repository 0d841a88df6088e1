"""Web robustness (issue 10): forged posts refused (Origin/Host, form token), slow clients
timed out, results not cached and kept as long as the page says, hostile files → 413/422 in
French, work stopped when the client leaves."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
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
from qpv_geo.web.security import FormTokens

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
CSV = b"porteur;latitude;longitude\nAsso A;45,4335;4,3790\n"


def _run_async(coro):
    """Run a coroutine on its own loop in a worker thread: the session's Playwright browser
    keeps an event loop running in the main thread once a browser test has run."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def client():
    settings = Settings.from_env(origines_autorisees="https://qpv.exemple.org")
    with TestClient(create_app(settings)) as c:
        yield c


def _token(client) -> str:
    html = client.get("/lot").text
    return html.split('name="jeton" value="')[1].split('"')[0]


def _post(client, *, headers=None, data=None, name="sites.csv", content=CSV):
    return client.post("/lot", files={"fichier": (name, content, "text/csv")},
                       data=data or {}, headers=headers or {})


# ------------------------------------------------------------------ 10.11 CSRF

def test_post_from_another_site_is_refused(client) -> None:
    r = _post(client, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert "Requête refusée" in r.text and "autre site" in r.text


def test_post_with_a_foreign_host_is_refused(client) -> None:
    r = _post(client, headers={"Host": "evil.example"})
    assert r.status_code == 403 and "pas celle du serveur" in r.text
    r = client.post("/api/v1/verdicts", json={"lieux": []}, headers={"Host": "evil.example"})
    assert r.status_code == 403 and r.json()["erreur"].startswith("Requête refusée")


def test_browser_post_needs_the_form_token(client) -> None:
    same = {"Origin": "http://testserver"}
    r = _post(client, headers=same)
    assert r.status_code == 403 and "Formulaire expiré" in r.text
    r = _post(client, headers=same, data={"jeton": "123.abc"})
    assert r.status_code == 403
    r = _post(client, headers=same, data={"jeton": _token(client)})
    assert r.status_code == 200, r.text
    assert "vérifié : 1 ligne(s)" in r.text  # heading names the uploaded file


def test_allowed_origin_setting(client) -> None:
    headers = {"Host": "qpv.exemple.org", "Origin": "https://qpv.exemple.org"}
    r = _post(client, headers=headers, data={"jeton": _token(client)})
    assert r.status_code == 200, r.text


def test_scripts_without_browser_headers_still_work(client) -> None:
    assert _post(client).status_code == 200


def test_tokens_expire_and_are_signed() -> None:
    tokens = FormTokens(ttl_s=60)
    t = tokens.new()
    assert tokens.valid(t) and not FormTokens().valid(t)  # another server's secret
    stamp, sig = t.split(".")
    old = str(int(stamp) - 3600)
    assert not tokens.valid(f"{old}.{sig}")  # signature of another time
    assert not tokens.valid(f"{old}.{tokens._sign(old)}")  # expired


# ------------------------------------------------------------------ 10.12

def test_downloads_are_not_cached_and_retention_agrees(client) -> None:
    r = _post(client)
    html = r.text
    services = client.app.state.services
    assert f"seulement les {services.results.max_entries} derniers" in html
    link = html.split('href="/lot/resultat/')[1].split('"')[0]
    d = client.get("/lot/resultat/" + link)
    assert d.headers["cache-control"] == "no-store"
    gone = client.get("/lot/resultat/" + link.split("/")[0][:-2] + "zz/0")
    assert services.results.retention_text() in gone.text


def test_only_the_announced_number_of_results_is_kept(client) -> None:
    services = client.app.state.services
    first = _post(client).text.split('href="/lot/resultat/')[1].split('"')[0]
    for _ in range(services.results.max_entries):
        _post(client)
    r = client.get("/lot/resultat/" + first)
    assert r.status_code == 400
    assert f"les {services.results.max_entries} derniers" in r.text


def test_slow_body_gets_408() -> None:
    from qpv_geo.web.security import _Refused, _SlowBody

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict] = []
    calls = 0

    async def receive():
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"a", "more_body": True}
        await asyncio.sleep(60)

    async def send(message):
        sent.append(message)

    def render(path, exc: _Refused):
        from starlette.responses import PlainTextResponse

        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    guard = _SlowBody(app, delay_s=0.2, render=render)
    start = time.perf_counter()
    _run_async(guard({"type": "http", "method": "POST", "path": "/lot", "headers": []},
                      receive, send))
    assert time.perf_counter() - start < 5
    assert sent[0]["status"] == 408


def test_slow_headers_are_cut_by_the_server() -> None:
    import uvicorn

    from qpv_geo.web._server import timed_protocol

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=timed_protocol(0.5),
                            log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            start = time.perf_counter()
            assert s.recv(100) == b""  # closed by the server
            assert time.perf_counter() - start < 3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ------------------------------------------------------------------ 10.6 / 10.13 on /lot

@pytest.mark.parametrize(("name", "status", "words"), [
    ("zip_bomb.xlsx", 413, "bombe zip"),
    ("declared_millions_of_rows.xlsx", 413, "5 970 000 lignes"),
    ("billion_laughs.xlsx", 422, "DOCTYPE"),
])
def test_hostile_xlsx_on_lot_is_a_french_4xx(client, name, status, words) -> None:
    r = _post(client, name=name, content=(HOSTILE / name).read_bytes())
    assert r.status_code == status, r.text[:500]
    assert words in r.text and "Traceback" not in r.text


def test_work_stops_when_the_client_leaves() -> None:
    from qpv_geo._cancel import check_cancelled
    from qpv_geo.exceptions import OperationCancelled
    from qpv_geo.web.app import _run_while_connected

    class Gone:
        async def is_disconnected(self) -> bool:
            return True

    stopped = threading.Event()

    def work() -> None:
        try:
            for _ in range(600):
                check_cancelled()
                time.sleep(0.05)
        finally:
            stopped.set()

    start = time.perf_counter()
    with pytest.raises(OperationCancelled):
        _run_async(_run_while_connected(Gone(), work))
    assert stopped.is_set() and time.perf_counter() - start < 5


def test_reading_checks_for_cancellation(tmp_path) -> None:
    from qpv_geo._cancel import cancellable
    from qpv_geo.batch import read_sites
    from qpv_geo.exceptions import OperationCancelled

    path = tmp_path / "s.csv"
    path.write_text("Porteur;Latitude;Longitude\n" + "A;45,4335;4,3790\n" * 5000)
    event = threading.Event()
    event.set()
    with cancellable(event), pytest.raises(OperationCancelled):
        read_sites(path)


def test_geocoding_checks_for_cancellation(engine) -> None:
    import pandas as pd

    from qpv_geo._cancel import cancellable
    from qpv_geo.batch import detect_columns, validate_sites
    from qpv_geo.exceptions import OperationCancelled
    from tests.test_batch import FakeGeocoder

    frame = pd.DataFrame({"Adresse": ["3 rue Fausse"], "Commune": ["Saint-Étienne"]})
    fake = FakeGeocoder()
    event = threading.Event()
    event.set()
    with cancellable(event), pytest.raises(OperationCancelled):
        validate_sites(frame, detect_columns(frame.columns), engine=engine, geocoder=fake)
    assert fake.calls == []
