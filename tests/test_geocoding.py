"""Geocoding: the offline geocoder on a hand-written BAN file, the BAN client against a local
fake server speaking the real protocol, installing/downloading address files, the CLI."""

from __future__ import annotations

import gzip
import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from qpv_geo.exceptions import (
    GeocoderNotConfigured,
    GeocoderQueryError,
    GeocoderRateLimited,
    GeocoderUnavailable,
    InputFileError,
)
from qpv_geo.geocoding import (
    PRECISIONS,
    AddressQuery,
    BanGeocoder,
    Geocoder,
    GeocodeResult,
    LocalGeocoder,
    adresses_info,
    download_adresses,
    geocoder_from_settings,
    geocoder_info,
    install_adresses,
    normalize,
    reliability_issues,
    tokens,
    update_adresses_cli,
)
from qpv_geo.settings import Settings
from tests.fake_ban import FakeBan

HERE = Path(__file__).resolve().parent / "data" / "geocoding"
FIXTURE = HERE / "adresses-test.csv"


def _rows() -> dict[tuple[str, str, str, str], tuple[float, float]]:
    out = {}
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(";")
    for line in lines[1:]:
        r = dict(zip(header, line.split(";"), strict=True))
        out[(r["code_insee"], r["nom_voie"], r["numero"], r["rep"])] = (float(r["lon"]),
                                                                          float(r["lat"]))
    return out


ROWS = _rows()


def point(insee: str, voie: str, numero: int, rep: str = "") -> tuple[float, float]:
    return ROWS[(insee, voie, str(numero), rep)]


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> LocalGeocoder:
    return LocalGeocoder(FIXTURE, cache_dir=tmp_path_factory.mktemp("geocache"))


def assert_at(res: GeocodeResult, expected: tuple[float, float], precision: str = "housenumber"):
    assert res.found, res.motif
    assert res.precision == precision, res
    assert (res.lon, res.lat) == pytest.approx(expected, abs=1e-6), res


# ---------------------------------------------------------------------------------------------
# Types and reliability
# ---------------------------------------------------------------------------------------------


def test_result_to_dict_keys_and_found():
    r = GeocodeResult("q", 4.39, 45.43, label="L", score=0.91234, precision="housenumber",
                      citycode="42218", postcode="42000", source="ban")
    assert r.found
    assert r.to_dict() == {"geocodage_label": "L", "geocodage_score": 0.912,
                           "geocodage_precision": "housenumber", "geocodage_source": "ban",
                           "geocodage_citycode": "42218", "geocodage_postcode": "42000",
                           "lon": 4.39, "lat": 45.43}
    miss = GeocodeResult("q", None, None, source="local", motif="adresse vide")
    assert not miss.found
    assert miss.to_dict()["geocodage_motif"] == "adresse vide"


def test_reliability_issues():
    good = GeocodeResult("q", 4.3, 45.4, score=0.8, precision="housenumber", source="local")
    assert reliability_issues(good, score_min=0.6) == []
    assert reliability_issues(good, score_min=0.9) == [
        "score 0.80 < 0.90 (confiance du géocodeur, de 0 à 1, sous le seuil)"]
    street = GeocodeResult("q", 4.3, 45.4, score=0.42, precision="street", source="ban")
    assert reliability_issues(street, score_min=0.6) == ["géocodé à la rue seulement",
                                                         "score 0.42 < 0.60 (confiance du "
                                                         "géocodeur, de 0 à 1, sous le seuil)"]
    town = GeocodeResult("q", 4.3, 45.4, score=0.9, precision="municipality", source="ban")
    assert reliability_issues(town, score_min=0.6) == ["géocodé à la commune seulement"]
    demo = GeocodeResult("q", 4.3, 45.4, score=1.0, precision="housenumber", source="local-demo")
    # A demo point is marked on outputs (source "local-demo"), not judged unreliable here.
    assert reliability_issues(demo, score_min=0.6) == []
    miss = GeocodeResult("q", None, None, motif="adresse vide")
    assert reliability_issues(miss, score_min=0.6) == ["adresse vide"]


def test_normalisation_of_what_people_type():
    assert normalize("  Saint-ÉTIENNE, l'Œuvre ") == "saint etienne l oeuvre"
    assert tokens("12bis bd St-Etienne") == ["12", "bis", "boulevard", "saint", "etienne"]
    assert tokens("3 r. Ste Barbe") == ["3", "rue", "sainte", "barbe"]


# ---------------------------------------------------------------------------------------------
# Local geocoder: each input quirk
# ---------------------------------------------------------------------------------------------


def test_local_exact_address(local):
    res = local.geocode("3 Rue Victor Hugo 42000 Saint-Étienne")
    assert_at(res, point("42218", "Rue Victor Hugo", 3))
    assert res.citycode == "42218" and res.postcode == "42000"
    assert res.label == "3 Rue Victor Hugo 42000 Saint-Étienne"
    assert res.score >= 0.95 and res.source == "local"
    assert isinstance(local, Geocoder)


@pytest.mark.parametrize("query", [
    "3 RUE VICTOR HUGO 42000 SAINT ETIENNE",            # case, no accents
    "3 r Victor Hugo St-Etienne",                       # abbreviations, St-Etienne
    "3, r. victor hugo - 42000 st etienne",             # punctuation
    "Saint-Étienne 3 rue Victor Hugo",                  # commune first
    "3 rue Victro Hugo 42000 Saint-Etiene",             # typos (street and commune)
    "Mme Dupont appt 12 3 rue Victor Hugo 42000 Saint-Étienne",  # extra words before
])
def test_local_quirks_same_point(local, query):
    res = local.geocode(query)
    assert_at(res, point("42218", "Rue Victor Hugo", 3))
    assert res.score >= 0.6, res


def test_local_accents_and_abbreviated_types(local):
    assert_at(local.geocode("12 rue emile zola saint-etienne"), point("42218", "Rue Émile Zola",
                                                                      12))
    assert_at(local.geocode("10 bd Jules Janin 42000 St Etienne"),
              point("42218", "Boulevard Jules Janin", 10))
    assert_at(local.geocode("1 pl. Jean-Jaures St-Étienne"), point("42218", "Place Jean Jaurès",
                                                                   1))


def test_local_bis_ter(local):
    assert_at(local.geocode("5 bis rue Victor Hugo Saint-Étienne"),
              point("42218", "Rue Victor Hugo", 5, "bis"))
    assert_at(local.geocode("5b rue Victor Hugo Saint-Étienne"),
              point("42218", "Rue Victor Hugo", 5, "bis"))
    assert_at(local.geocode("5 rue Victor Hugo Saint-Étienne"),
              point("42218", "Rue Victor Hugo", 5))
    ter = local.geocode("14 ter rue Emile Zola 42100 Saint-Etienne")
    assert_at(ter, point("42218", "Rue Émile Zola", 14, "ter"))
    assert ter.label.startswith("14 ter ")


def test_local_wrong_or_missing_postcode(local):
    right = local.geocode("3 rue Victor Hugo 42000 Saint-Étienne")
    wrong = local.geocode("3 rue Victor Hugo 42700 Saint-Étienne")
    assert_at(wrong, point("42218", "Rue Victor Hugo", 3))
    assert 0.6 <= wrong.score < right.score
    # no commune, no postcode: the street is unique in SEM, found with a lower score
    alone = local.geocode("10 boulevard Jules Janin")
    assert_at(alone, point("42218", "Boulevard Jules Janin", 10))
    assert alone.score < right.score
    # postcode only (no commune name)
    assert_at(local.geocode("12 rue Emile Zola 42100"), point("42218", "Rue Émile Zola", 12))


def test_local_same_street_name_in_two_communes(local):
    assert_at(local.geocode("3 rue Victor Hugo 42400 Saint-Chamond"),
              point("42207", "Rue Victor Hugo", 3))
    assert_at(local.geocode(AddressQuery("3 rue Victor Hugo", postcode="42400",
                                         city="St Chamond")),
              point("42207", "Rue Victor Hugo", 3))
    assert_at(local.geocode(AddressQuery("3 rue Victor Hugo", citycode="42218")),
              point("42218", "Rue Victor Hugo", 3))
    # a commune outside SEM is not SEM's street of the same name
    lyon = local.geocode("10 rue de la République 69001 Lyon")
    assert not (lyon.found and lyon.precision == "housenumber" and lyon.citycode == "69123")


def test_local_commune_name_inside_a_street_name(local):
    res = local.geocode("4 rue de Saint-Chamond 42700 Firminy")
    assert_at(res, point("42095", "Rue de Saint-Chamond", 4))
    assert_at(local.geocode("6 rue de St Chamond"), point("42095", "Rue de Saint-Chamond", 6))


def test_local_former_commune_name(local):
    res = local.geocode("8 chemin des Tilleuls Saint-Victor-sur-Loire")
    assert_at(res, point("42218", "Chemin des Tilleuls", 8))
    assert res.citycode == "42218" and res.postcode == "42230"


def test_local_lieu_dit(local):
    ld = local.geocode("Les Granges, Saint-Étienne")
    assert ld.found and ld.precision == "locality" and ld.citycode == "42218"
    a, b = point("42218", "Rue de la Montat", 20), point("42218", "Rue de la Montat", 22)
    assert ld.lon == pytest.approx((a[0] + b[0]) / 2) and ld.lat == pytest.approx(
        (a[1] + b[1]) / 2)
    # a lieu-dit used as street name, with numbers
    assert_at(local.geocode("2 Le Bourg 42240 Caloire"), point("42031", "Le Bourg", 2))
    # numbered in the file without a type word: a street like any other (issue 20)
    cote = local.geocode("La Cote Chaude Caloire")
    assert_at(cote, point("42031", "La Côte Chaude", 1), precision="street")


def test_local_commune_only_gives_municipality(local):
    res = local.geocode("42100 Saint-Étienne")
    assert res.found and res.precision == "municipality"
    assert res.citycode == "42218" and res.postcode == "42100"
    assert reliability_issues(res, score_min=0.6) == ["géocodé à la commune seulement"]
    firminy = local.geocode("firminy")
    assert firminy.precision == "municipality" and firminy.citycode == "42095"
    # the commune's point is the median of its addresses
    assert firminy.lat == pytest.approx(45.387)


def test_local_street_only_gives_street_at_middle_address(local):
    res = local.geocode("rue Victor Hugo 42000 Saint-Étienne")
    assert res.found and res.precision == "street"
    # 7 addresses sorted by number (1, 2, 3, 4, 5, 5 bis, 9): the middle one is the 4
    assert (res.lon, res.lat) == pytest.approx(point("42218", "Rue Victor Hugo", 4))
    assert reliability_issues(res, score_min=0.6) == ["géocodé à la rue seulement"]


def test_local_unknown_number_is_interpolated_on_the_street(local):
    res = local.geocode("7 rue Victor Hugo 42000 Saint-Étienne")
    assert res.precision == "street"
    (x5, y5), (x9, y9) = point("42218", "Rue Victor Hugo", 5), point("42218", "Rue Victor Hugo",
                                                                     9)
    assert (res.lon, res.lat) == pytest.approx(((x5 + x9) / 2, (y5 + y9) / 2))
    assert "interpolée entre le 5 et le 9" in res.motif
    far = local.geocode("99 rue Victor Hugo 42000 Saint-Étienne")
    assert far.precision == "street" and "milieu de la voie" in far.motif


def test_local_not_found_has_a_motif(local):
    res = local.geocode("zzz qqq www")
    assert not res.found and res.motif and "non trouvée" in res.motif
    # a commune written outside SEM is not « not found »: it is outside the territory
    res = local.geocode("12 rue de Paris 75001 Paris")
    assert not res.found and res.hors_territoire and "Paris (75)" in res.hors_territoire
    assert local.geocode("   ").motif == "adresse vide"
    unknown_street = local.geocode("12 rue Inexistante 42000 Saint-Étienne")
    assert unknown_street.precision == "municipality"
    assert "non trouvée dans la commune" in unknown_street.motif


def test_local_geocode_many_order_duplicates_progress(local):
    queries = ["3 rue Victor Hugo Saint-Étienne", "", "firminy",
               AddressQuery("10 rue de la République", city="Saint-Chamond"),
               "3 rue Victor Hugo Saint-Étienne"]
    seen: list[int] = []
    out = local.geocode_many(queries, progress=seen.append)
    assert len(out) == 5 and sum(seen) == 5
    assert [r.precision for r in out] == ["housenumber", None, "municipality", "housenumber",
                                          "housenumber"]
    assert out[3].citycode == "42207" and out[0] == out[4]
    assert out[3].query == "10 rue de la République Saint-Chamond"


def test_local_suggest(local):
    sugg = local.suggest("rue victor hu", limit=5)
    assert {s.citycode for s in sugg} == {"42218", "42207"}
    assert all(s.precision == "street" for s in sugg)


def test_local_scores_are_between_0_and_1_and_precisions_known(local):
    for q in ("3 rue Victor Hugo", "Les Granges", "Saint-Etienne", "rue Hugo", "Le Bourg"):
        r = local.geocode(q)
        assert 0.0 <= r.score <= 1.0
        assert r.precision in (*PRECISIONS, None)


def test_local_index_cached_and_rebuilt_when_file_changes(tmp_path):
    src = tmp_path / "adresses.csv"
    shutil.copy(FIXTURE, src)
    first = LocalGeocoder(src, cache_dir=tmp_path / "c")
    assert first.build_seconds is not None and first.index_bytes > 0
    again = LocalGeocoder(src, cache_dir=tmp_path / "c")
    assert again.build_seconds is None  # loaded, not rebuilt
    assert again.geocode("3 rue Victor Hugo Saint-Étienne") == first.geocode(
        "3 rue Victor Hugo Saint-Étienne")
    with open(src, "a", encoding="utf-8") as fh:
        fh.write("42218_0921_00011;42218_0921;11;;Rue Victor Hugo;42000;42218;Saint-Étienne;;;"
                 "0;0;4.390000;45.435000;entrée;;;SAINT ETIENNE;RUE VICTOR HUGO;commune;"
                 "commune;1;\n")
    changed = LocalGeocoder(src, cache_dir=tmp_path / "c")
    assert changed.build_seconds is not None and changed.index_path != first.index_path
    assert_at(changed.geocode("11 rue Victor Hugo Saint-Étienne"), (4.39, 45.435))


def test_local_refuses_a_file_not_in_ban_format(tmp_path):
    with pytest.raises(InputFileError, match="colonnes manquantes"):
        LocalGeocoder(HERE / "pas-ban.csv", cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# Default geocoder: demo file, then an installed BAN file
# ---------------------------------------------------------------------------------------------


def test_geocoder_choice_auto_local_ban_demo(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c",
                        ban_url="http://127.0.0.1:9/geocodage")
    assert Settings().geocoder == "auto"
    # no address file installed: auto is the online service, never the demonstration file
    auto = geocoder_from_settings(settings)
    assert isinstance(auto, BanGeocoder) and not auto.demo
    assert geocoder_info(settings)["geocodeur"] == "ban"
    with pytest.raises(GeocoderNotConfigured, match="Aucun fichier") as info_local:
        geocoder_from_settings(settings, "local")
    assert "data update --adresses" in info_local.value.hint
    # installed: auto and local use it, offline
    install_adresses(FIXTURE, settings)
    assert geocoder_from_settings(settings).source == "local"
    assert geocoder_from_settings(settings, "local").source == "local"
    assert geocoder_info(settings) | {"adresses": ""} == {
        "choix": "auto", "geocodeur": "local", "demo": False, "adresses": ""}
    assert isinstance(geocoder_from_settings(settings, "ban"), BanGeocoder)
    assert geocoder_info(settings, "demo")["demo"] is True


def test_auto_without_file_nor_service_says_how_to_install(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c",
                        ban_url="http://127.0.0.1:9/geocodage", timeout_s=2)
    g = geocoder_from_settings(settings)
    g.retries, g.backoff_s = 0, 0.0
    with pytest.raises(GeocoderUnavailable) as info:
        g.geocode("3 rue Victor Hugo 42000 Saint-Étienne")
    assert "data update --adresses" in info.value.hint
    assert "import-adresses" in info.value.hint


def test_demo_geocoder_is_the_demo_file_and_says_so(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c", geocoder="demo")
    info = adresses_info(settings)
    assert info["demo"] is True
    geocoder = geocoder_from_settings(settings)
    assert geocoder.name == "local" and geocoder.demo is True
    # any demo address: the first data row of the shipped file
    with gzip.open(info["path"], "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split(";")
        row = dict(zip(header, fh.readline().rstrip("\n").split(";"), strict=True))
    res = geocoder.geocode(f"{row['numero']} {row['nom_voie']} {row['code_postal']} "
                           f"{row['nom_commune']}")
    assert res.source == "local-demo" and res.precision == "housenumber"
    assert (res.lon, res.lat) == pytest.approx((float(row["lon"]), float(row["lat"])))
    # The verdict on a demo point says it is a demonstration address.
    from qpv_geo.eligibility.factory import engine_from_settings

    verdict = engine_from_settings(settings).judge_point(geocode=res)
    assert any("adresse de démonstration (fichier d'adresses fictif)" in m
               for m in verdict.motifs)


def test_install_adresses_restricts_to_sem_and_switches_source(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    gz = tmp_path / "adresses-42.csv.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    info = install_adresses(gz, settings)
    assert info["rows"] == 29 and info["rows_source"] == 31  # the 2 Lyon rows are dropped
    from qpv_geo.geocoding import installed_adresses_dir

    manifest = json.loads((installed_adresses_dir(settings) / "manifest.json").read_text("utf-8"))
    assert manifest["sha256"] == info["sha256"] and len(manifest["sha256"]) == 64
    assert manifest["installed_at"] and manifest["source"].endswith("adresses-42.csv.gz")
    geocoder = geocoder_from_settings(settings)
    assert geocoder.demo is False
    res = geocoder.geocode("3 rue Victor Hugo Saint-Étienne")
    assert res.source == "local" and res.precision == "housenumber"
    assert reliability_issues(res, score_min=0.6) == []


def test_install_adresses_refuses_bad_files(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    with pytest.raises(InputFileError, match="colonnes manquantes"):
        install_adresses(HERE / "pas-ban.csv", settings)
    lyon_only = tmp_path / "lyon.csv"
    lines = FIXTURE.read_text("utf-8").splitlines()
    lyon_only.write_text("\n".join([lines[0], *[ln for ln in lines if ln.startswith("69123")]])
                         + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="aucune adresse"):
        install_adresses(lyon_only, settings)
    assert adresses_info(settings)["demo"] is True


@pytest.fixture()
def file_server(tmp_path):
    """A local HTTP server serving tmp_path/www (for the pooch download)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = lambda *a, **k: _QuietFiles(*a, directory=str(www), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def test_download_adresses_from_a_local_server(tmp_path, file_server):
    www, base = file_server
    (www / "adresses-42.csv.gz").write_bytes(gzip.compress(FIXTURE.read_bytes()))
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c",
                        adresses_url=f"{base}/adresses-42.csv.gz")
    message = update_adresses_cli(settings)
    assert "29 adresses" in message
    info = adresses_info(settings)
    assert info["demo"] is False and info["source"] == f"{base}/adresses-42.csv.gz"
    from qpv_geo.exceptions import DownloadError

    with pytest.raises(DownloadError, match="Téléchargement impossible"):
        download_adresses(settings, url=f"{base}/absent.csv.gz")


# ---------------------------------------------------------------------------------------------
# BAN online, against the local fake server
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def fake_ban():
    fake = FakeBan().start()
    yield fake
    fake.stop()


def ban(fake: FakeBan, tmp_path: Path, **kw) -> BanGeocoder:
    kw = {"cache_dir": tmp_path / "ban", "rate_limit": 0, "backoff_s": 0.01, "timeout": 5, **kw}
    return BanGeocoder(fake.url, **kw)


def test_ban_single_search_parsing_and_params(fake_ban, tmp_path):
    g = ban(fake_ban, tmp_path)
    res = g.geocode("8 boulevard Jules Janin 42000 Saint-Etienne")
    assert res == GeocodeResult(
        query="8 boulevard Jules Janin 42000 Saint-Etienne", lon=4.3859, lat=45.4405,
        label="8 Boulevard Jules Janin 42000 Saint-Étienne", score=0.97, precision="housenumber",
        citycode="42218", postcode="42000", source="ban", street="Boulevard Jules Janin")
    req = fake_ban.requests[-1]
    assert req.path == "/geocodage/search"  # as documented: no trailing slash
    assert req.params["index"] == ["address"]
    assert req.params["q"] == ["8 boulevard Jules Janin 42000 Saint-Etienne"]
    assert req.params["limit"] == ["1"]
    assert req.headers["User-Agent"].startswith("qpv-geo/")
    street = g.geocode("rue de la République Saint-Chamond")
    assert street.precision == "street" and street.citycode == "42207"
    assert g.geocode("Firminy").precision == "municipality"
    miss = g.geocode("nulle part 99999")
    assert not miss.found and "non trouvée" in miss.motif


def test_ban_postcode_goes_in_the_text_not_as_a_filter(fake_ban, tmp_path):
    g = ban(fake_ban, tmp_path)
    ok = g.geocode(AddressQuery("3 rue Victor Hugo", postcode="42000"))
    assert ok.found and ok.issues == ()
    params = fake_ban.requests[-1].params
    assert params["q"] == ["3 rue Victor Hugo 42000"] and "postcode" not in params
    # a wrong postcode does not turn into another street: the result is found, and the
    # consistency rules say that the postcode written is another commune's
    wrong = g.geocode(AddressQuery("3 rue Victor Hugo", postcode="42700"))
    assert wrong.found and any("42700" in i for i in wrong.issues)


def test_ban_wrong_street_at_a_high_score_is_never_confident(fake_ban, tmp_path, engine):
    g = ban(fake_ban, tmp_path)
    res = g.geocode("12 rue Balay 42000 Saint-Étienne")
    assert res.score > 0.7 and res.precision == "housenumber"
    assert any("Rue Sainte-Anne" in i for i in res.issues)
    assert engine.judge_point(geocode=res).status == "a_verifier"
    lyon = g.geocode("26 Allée des Coquelicots 69002 Lyon")  # the service answers Firminy
    verdict = engine.judge_point(geocode=lyon)
    assert verdict.status == "hors_territoire" and "Lyon" in " ".join(verdict.motifs)


def test_ban_one_rule_whatever_the_number_of_rows(fake_ban, tmp_path):
    weak = "99 rue inventée 42000 Saint-Étienne"  # score 0.42
    single = ban(fake_ban, tmp_path / "a").geocode(weak)
    many = ban(fake_ban, tmp_path / "b").geocode_many(
        [weak, *[f"{k} rue du Test Saint-Etienne" for k in range(1, 6)]])
    assert fake_ban.count("/search/csv") == 1
    assert not single.found and not many[0].found
    assert single.motif == many[0].motif and "0,5" in single.motif
    wrong = "12 rue Balay 42000 Saint-Étienne"
    one = ban(fake_ban, tmp_path / "c").geocode(wrong)
    batch = ban(fake_ban, tmp_path / "d").geocode_many(
        [wrong, *[f"{k} rue du Test Saint-Etienne" for k in range(1, 6)]])
    assert one.issues == batch[0].issues and one.issues


@pytest.mark.parametrize("status", [400, 503])
def test_ban_csv_refused_falls_back_per_address_and_reports(fake_ban, tmp_path, status):
    fake_ban.csv_fail = status
    queries = [f"{k} rue du Test Saint-Etienne" for k in range(1, 7)] + ["1 rue refus400"]
    out = ban(fake_ban, tmp_path, retries=1).geocode_many(queries)
    assert all(r.found for r in out[:6])
    assert not out[6].found and "refusée par le service BAN" in out[6].motif
    assert fake_ban.count("/search") == 7


def test_ban_rows_not_found_without_result_status_are_not_ok(fake_ban, tmp_path):
    fake_ban.omit_status = True
    out = ban(fake_ban, tmp_path).geocode_many(
        ["adresse inconnue quelque part", *[f"{k} rue du Test Saint-Etienne"
                                            for k in range(1, 6)]])
    assert not out[0].found and "(ok)" not in out[0].motif and "non trouvée" in out[0].motif
    assert all(r.found for r in out[1:])


def test_ban_csv_batch_chunks_order_failures(fake_ban, tmp_path):
    g = ban(fake_ban, tmp_path, chunk_size=3)
    queries = [f"{k} rue du Test Saint-Etienne" for k in (5, 1, 7)] + [
        "adresse inconnue quelque part", AddressQuery("3 rue Victor Hugo", postcode="42000"),
        "ab", "9 rue du Test Saint-Etienne", "5 rue du Test Saint-Etienne"]
    progress: list[int] = []
    out = g.geocode_many(queries, progress=progress.append)
    assert len(out) == 8 and sum(progress) == 8
    assert [r.label for r in out[:3]] == [f"{k} Rue du Test 42100 Saint-Étienne"
                                          for k in (5, 1, 7)]
    assert not out[3].found and "non trouvée" in out[3].motif
    assert out[4].found and out[4].query == "3 rue Victor Hugo 42000"
    assert not out[5].found  # « ab »: too short, not sent
    assert out[7] == out[0]
    posts = [r for r in fake_ban.requests if r.method == "POST"]
    # 6 distinct queries to send in chunks of 3 → 2 uploads
    assert [r.rows for r in posts] == [3, 3]
    assert posts[0].params["columns"] == ["adresse"]
    # the postcode is in the text, never a filter
    assert all("postcode" not in r.params for r in posts)
    assert all(r.path == "/geocodage/search/csv" for r in posts)


def test_ban_retries_on_500_then_succeeds(fake_ban, tmp_path):
    fake_ban.fail_next = [(500, None), (502, None)]
    res = ban(fake_ban, tmp_path).geocode("Firminy")
    assert res.found and fake_ban.count("/search") == 3


def test_ban_429_waits_retry_after(fake_ban, tmp_path):
    fake_ban.fail_next = [(429, "1")]
    t0 = time.monotonic()
    res = ban(fake_ban, tmp_path).geocode("Firminy")
    assert res.found and time.monotonic() - t0 >= 0.95
    assert fake_ban.count("/search") == 2


def test_ban_persistent_failures_raise(fake_ban, tmp_path):
    fake_ban.always_fail = 503
    with pytest.raises(GeocoderUnavailable, match="HTTP 503"):
        ban(fake_ban, tmp_path, retries=2).geocode("Firminy")
    assert fake_ban.count("/search") == 3
    fake_ban.reset()
    fake_ban.always_fail = 429
    with pytest.raises(GeocoderRateLimited):
        ban(fake_ban, tmp_path, retries=1).geocode("Firminy")
    fake_ban.reset()
    fake_ban.fail_next = [(429, "3600")]  # asked to wait an hour: stop at once
    with pytest.raises(GeocoderRateLimited) as info:
        ban(fake_ban, tmp_path).geocode("Firminy")
    assert info.value.retry_after == pytest.approx(3600)
    fake_ban.reset()
    with pytest.raises(GeocoderQueryError):  # 400 from the service: not retried
        ban(fake_ban, tmp_path, cache_dir=None).search("ab")
    assert fake_ban.count("/search") == 1
    fake_ban.reset()
    fake_ban.always_fail = 500
    with pytest.raises(GeocoderUnavailable):
        ban(fake_ban, tmp_path, retries=1).geocode_many([f"{k} rue X" for k in range(6)])


def test_ban_unreachable_raises_unavailable(tmp_path):
    g = BanGeocoder("http://127.0.0.1:9/geocodage", cache_dir=None, retries=1, backoff_s=0.01,
                    timeout=2)
    with pytest.raises(GeocoderUnavailable, match="injoignable"):
        g.geocode("Firminy")


def test_ban_cache_hit_on_rerun_and_batch_resume(fake_ban, tmp_path):
    g = ban(fake_ban, tmp_path)
    first = g.geocode("Firminy")
    n = len(fake_ban.requests)
    again = ban(fake_ban, tmp_path)  # new instance, same cache directory
    assert again.geocode("Firminy") == first
    assert len(fake_ban.requests) == n
    # batch interrupted after its first chunk: the re-run only sends what is missing
    queries = [f"{k} rue du Test Saint-Etienne" for k in range(1, 11)]
    g2 = ban(fake_ban, tmp_path, chunk_size=4, retries=0)
    fake_ban.reset()
    state = {"calls": 0}
    original = g2._csv_chunk

    def flaky(qs):
        state["calls"] += 1
        if state["calls"] == 2:
            raise GeocoderUnavailable("coupure")
        return original(qs)

    g2._csv_chunk = flaky
    with pytest.raises(GeocoderUnavailable):
        g2.geocode_many(queries)
    assert [r.rows for r in fake_ban.requests] == [4]
    resumed = ban(fake_ban, tmp_path, chunk_size=4).geocode_many(queries)
    assert [r.rows for r in fake_ban.requests] == [4, 4, 2]
    assert [r.label for r in resumed] == [f"{k} Rue du Test 42100 Saint-Étienne"
                                          for k in range(1, 11)]
    before = len(fake_ban.requests)
    ban(fake_ban, tmp_path, chunk_size=4).geocode_many(queries)
    assert len(fake_ban.requests) == before


def test_ban_rate_limit_respected(fake_ban, tmp_path):
    g = ban(fake_ban, tmp_path, cache_dir=None, rate_limit=20)
    t0 = time.monotonic()
    for _ in range(6):
        g.search("Firminy", limit=1)
    elapsed = time.monotonic() - t0
    assert elapsed >= 5 / 20 * 0.95  # 6 requests at 20/s: at least 5 intervals of 50 ms
    stamps = []
    g2 = ban(fake_ban, tmp_path, cache_dir=None, rate_limit=0)
    t0 = time.monotonic()
    for _ in range(6):
        g2.search("Firminy", limit=1)
        stamps.append(time.monotonic())
    assert stamps[-1] - t0 < elapsed  # without the limit it is faster


def test_geocoder_from_settings_ban(fake_ban, tmp_path):
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c", ban_url=fake_ban.url)
    g = geocoder_from_settings(settings, "ban")
    assert isinstance(g, BanGeocoder) and g.name == "ban"
    assert g.geocode("Firminy").citycode == "42095"
    from qpv_geo.exceptions import GeocoderNotConfigured

    with pytest.raises(GeocoderNotConfigured):
        geocoder_from_settings(settings, "google")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_geocode_and_import_adresses(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    monkeypatch.setenv("QPV_GEO_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("QPV_GEO_CACHE_DIR", str(tmp_path / "c"))
    runner = CliRunner()
    result = runner.invoke(app, ["data", "import-adresses", str(FIXTURE)])
    assert result.exit_code == 0, result.output
    assert "29 adresses" in result.output
    monkeypatch.setenv("QPV_GEO_GEOCODER", "auto")  # the installed file, not the demo
    result = runner.invoke(app, ["geocode", "3 r Victor Hugo St-Etienne", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["geocodage_precision"] == "housenumber" and data["geocodage_source"] == "local"
    assert (data["lon"], data["lat"]) == pytest.approx(point("42218", "Rue Victor Hugo", 3))
    result = runner.invoke(app, ["geocode", "zzz qqq www"])
    assert result.exit_code == 2 and "non trouvée" in result.output
    result = runner.invoke(app, ["data", "import-adresses", str(HERE / "pas-ban.csv")])
    assert result.exit_code == 2 and "colonnes manquantes" in result.output


def test_local_batch_results_survive_an_interruption(tmp_path, monkeypatch):
    queries = ["3 rue Victor Hugo 42000 Saint-Étienne", "12bis bd Karl Marx St-Etienne",
               "rue inconnue 42000 Saint-Étienne"]
    first = LocalGeocoder(FIXTURE, cache_dir=tmp_path)
    done = first.geocode_many(queries)
    # A new process (new geocoder object) after Ctrl-C: nothing is geocoded again.
    again = LocalGeocoder(FIXTURE, cache_dir=tmp_path)

    def boom(query):
        raise AssertionError(f"geocoded again: {query}")

    monkeypatch.setattr(again, "_geocode_raw", boom)
    assert again.geocode_many(queries) == done
    # Another address file: other results, so the cache does not apply.
    other = tmp_path / "autre.csv"
    other.write_bytes(FIXTURE.read_bytes() + b"\n")
    fresh = LocalGeocoder(other, cache_dir=tmp_path)
    monkeypatch.setattr(fresh, "_geocode_raw", boom)
    with pytest.raises(AssertionError, match="geocoded again"):
        fresh.geocode_many(queries[:1])


def test_local_same_street_in_several_communes_without_commune(local, engine):
    # « rue Victor Hugo » exists at Saint-Étienne and Saint-Chamond: no commune written →
    # both candidates are kept, and the engine judges each one
    res = local.geocode("3 rue Victor Hugo")
    assert res.found and {a["citycode"] for a in res.alternatives} | {res.citycode} == {
        "42218", "42207"}
    verdict = engine.judge_point(geocode=res)
    text = " ".join(verdict.motifs)
    assert "présente dans 2 communes de SEM" in text
    assert "Saint-Chamond" in text and "Saint-Étienne" in text
    # the commune written decides: no alternative
    assert local.geocode("3 rue Victor Hugo 42400 Saint-Chamond").alternatives == ()


def test_candidates_with_different_verdicts_are_a_verifier(engine, montreynaud):
    res = GeocodeResult("3 rue X", montreynaud["lon"], montreynaud["lat"], label="3 Rue X",
                        score=0.9, precision="housenumber", citycode="42218", source="ban",
                        street="Rue X", alternatives=({"label": "3 Rue X 42700 Firminy",
                                                       "lon": 4.30, "lat": 45.36,
                                                       "citycode": "42095"},))
    verdict = engine.judge_point(geocode=res)
    assert verdict.status == "a_verifier"
    assert any("à Saint-Étienne → éligible (QN04213M)" in m and "à Firminy →" in m
               for m in verdict.motifs)


class _Killed(BaseException):
    """A kill -9 right after the download: nothing after it runs."""


def test_an_address_download_left_by_a_killed_run_is_never_taken_for_another_url(
        tmp_path, file_server, monkeypatch):
    """Issue 21.9, the address file's twin: the download kept under one name for every URL."""
    from qpv_geo.exceptions import DownloadError
    from qpv_geo.geocoding import files

    www, base = file_server
    (www / "adresses-42.csv.gz").write_bytes(gzip.compress(FIXTURE.read_bytes()))
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c",
                        adresses_url=f"{base}/adresses-42.csv.gz")

    def killed(*_args, **_kwargs):
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(files, "install_adresses", killed)
        m.setattr(Path, "unlink", lambda *_a, **_k: None)  # no clean-up after a kill -9
        with pytest.raises(_Killed):
            download_adresses(settings)
    assert list((tmp_path / "c" / "downloads").iterdir())
    with pytest.raises(DownloadError, match="Téléchargement impossible"):
        download_adresses(settings, url=f"{base}/absent.csv.gz")
    assert not list((tmp_path / "c" / "downloads").iterdir())
    assert adresses_info(settings)["demo"] is True  # nothing installed from the other URL


def test_address_install_on_a_full_disk_is_said_as_such(tmp_path, monkeypatch):
    """A write failure while filtering the BAN file is not « fichier illisible »."""
    import errno

    real_open = gzip.open

    def full(target, mode="rb", *args, **kwargs):
        if "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(target, mode, *args, **kwargs)

    monkeypatch.setattr(gzip, "open", full)
    settings = Settings(data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    with pytest.raises(InputFileError, match="disque est plein") as caught:
        install_adresses(FIXTURE, settings)
    assert "illisible" not in str(caught.value)
