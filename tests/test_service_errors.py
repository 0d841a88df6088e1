"""Service errors are service errors (issue 19, point 7): an answer cut off half-way, a
malformed one, a service that goes down mid-batch are retried like a 5xx, then reported in
French as the service's failure — ``check`` exit 2, API 503, batch rows « non localisé » with
how to resume — never as a writing error, never a traceback. The fake service really cuts its
answers (tests/fake_ban.py)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qpv_geo.exceptions import GeocoderUnavailable
from qpv_geo.geocoding.ban import BanGeocoder
from qpv_geo.settings import Settings
from tests.fake_ban import FakeBan

runner = CliRunner()
TEST_STREET = [f"{k} rue du Test Saint-Etienne" for k in range(1, 13)]


@pytest.fixture()
def fake():
    server = FakeBan().start()
    yield server
    server.stop()


@pytest.fixture()
def fast_retries(monkeypatch):
    """The settings' geocoder, with short pauses between retries (same number of retries)."""
    original = BanGeocoder.from_settings.__func__

    def fast(cls, settings, **kw):
        g = original(cls, settings, **kw)
        g.backoff_s = 0.01
        g.chunk_size = 4
        return g

    monkeypatch.setattr(BanGeocoder, "from_settings", classmethod(fast))


def _ban(fake: FakeBan, tmp_path: Path, **kw) -> BanGeocoder:
    kw = {"cache_dir": tmp_path / "ban", "rate_limit": 0, "backoff_s": 0.01, "timeout": 5,
          "chunk_size": 4, **kw}
    return BanGeocoder(fake.url, **kw)


@pytest.mark.parametrize("mode", ["truncate", "chunked", "drop", "half"])
def test_a_broken_answer_is_retried(fake, tmp_path, mode):
    fake.cut_next = [mode]
    res = _ban(fake, tmp_path).geocode("Firminy")
    assert res.found and res.citycode == "42095"
    assert fake.count("/search") == 2


@pytest.mark.parametrize("mode", ["truncate", "half"])
def test_a_broken_csv_answer_is_retried(fake, tmp_path, mode):
    fake.cut_next = [mode]
    out = _ban(fake, tmp_path, chunk_size=8).geocode_many(TEST_STREET[:6])
    assert len(out) == 6 and all(r.found for r in out)
    assert fake.count("/search/csv") == 2 and fake.count("/search") == 0


@pytest.mark.parametrize("mode", ["truncate", "chunked", "half"])
def test_always_broken_is_the_service_failure_in_french(fake, tmp_path, mode):
    fake.cut_next = [mode] * 20
    with pytest.raises(GeocoderUnavailable) as info:
        _ban(fake, tmp_path, retries=2).geocode("Firminy")
    msg = str(info.value)
    assert "service de géocodage ne répond pas correctement" in msg and "3 essais" in msg
    assert ("coupée" in msg) or ("illisible" in msg)
    assert "relancez plus tard" in info.value.hint
    assert fake.count("/search") == 3


def test_check_exits_2_with_a_french_message(fake, tmp_path, monkeypatch, fast_retries):
    from qpv_geo.cli import app

    monkeypatch.setenv("QPV_GEO_BAN_URL", fake.url)
    fake.cut_next = ["truncate"] * 20
    res = runner.invoke(app, ["check", "Firminy", "--geocoder", "ban"])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    assert "service de géocodage ne répond pas correctement" in res.output
    assert "ChunkedEncodingError" not in res.output and "IncompleteRead" not in res.output


def test_api_answers_503(fake, monkeypatch, fast_retries):
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient
    from qpv_geo.web import create_app

    fake.cut_next = ["chunked"] * 20
    settings = Settings.from_env(geocoder="ban", ban_url=fake.url, timeout_s=5)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.get("/api/v1/verdict", params={"adresse": "8 boulevard Jules Janin 42000 "
                                                        "Saint-Etienne"})
        assert r.status_code == 503, r.text
        body = json.dumps(r.json(), ensure_ascii=False)
        assert "ne répond pas correctement" in body and "Chunked" not in body
        fake.reset()
        r = c.get("/api/v1/verdict", params={"adresse": "8 boulevard Jules Janin 42000 "
                                                        "Saint-Etienne"})
        assert r.status_code == 200 and r.json()["status"] != "non_geocode"


def _sites(tmp_path: Path) -> Path:
    src = tmp_path / "sites.csv"
    src.write_text("nom;adresse\n" + "".join(f"S{k};{a}\n" for k, a in enumerate(TEST_STREET)),
                   encoding="utf-8")
    return src


def test_service_down_mid_batch_gives_rows_to_resume(fake, tmp_path, monkeypatch,
                                                     fast_retries):
    from qpv_geo.batch import validation
    from qpv_geo.batch.validation import read_validated
    from qpv_geo.cli import app

    monkeypatch.setattr(validation, "GEOCODE_CHUNK", 4)
    monkeypatch.setenv("QPV_GEO_BAN_URL", fake.url)
    src, out = _sites(tmp_path), tmp_path / "out.csv"
    fake.down_after = 4  # four addresses answered, then nothing
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "--geocoder", "ban"])
    assert res.exit_code == 1, res.output
    text = res.output
    assert "écriture" not in text and "Vérifiez le dossier" not in text, text
    assert "Géocodage interrompu" in text and "relancez la même commande" in text
    rows = read_validated(out)
    assert len(rows) == 12
    assert (rows["status"].iloc[:4] != "non_geocode").all()
    assert (rows["status"].iloc[4:] == "non_geocode").all()
    assert rows["motifs"].iloc[-1].startswith("service de géocodage en panne")
    # the service is back: the same command resumes, the four found are not asked again
    fake.reset()
    res = runner.invoke(app, ["batch", str(src), "-o", str(out), "--geocoder", "ban"])
    assert res.exit_code == 0, res.output
    assert (read_validated(out)["status"] != "non_geocode").all()
    assert fake.count("/search") == 8


def test_truncated_answers_in_a_batch_are_the_service_failure(fake, tmp_path):
    from qpv_geo.batch import validate_file

    fake.cut_next = ["truncate"] * 200
    settings = Settings.from_env(geocoder="ban", ban_url=fake.url, cache_dir=tmp_path / "c",
                                 timeout_s=5)
    g = _ban(fake, tmp_path, retries=1)
    result = validate_file(_sites(tmp_path), tmp_path / "out.csv", settings=settings,
                           geocoder=g, progress=False)
    assert (result.frame["status"] == "non_geocode").all()
    assert "ne répond pas correctement" in result.summary["geocodage_interrompu"]
    assert (tmp_path / "out.csv").exists()
