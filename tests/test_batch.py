"""Batch validation: reading as people export, nothing lost, outputs, hostile inputs, scale."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qpv_geo import batch
from qpv_geo.batch import (
    OUTPUT_COLUMNS,
    ColumnMapping,
    detect_columns,
    read_sites,
    read_validated,
    validate_file,
    validate_sites,
    write_result,
)
from qpv_geo.exceptions import InputFileError
from qpv_geo.geocoding import AddressQuery, Geocoder, GeocodeResult, not_found
from qpv_geo.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
EXEMPLE = ROOT / "data" / "exemple_appel.csv"
INSIDE = (4.3790, 45.4335)  # inside QPV QN04212M (124 m from its edge, shipped copy)
OUTSIDE_SEM = (4.8590, 45.7606)  # Lyon


class FakeGeocoder:
    """Deterministic stand-in for the Geocoder protocol: a few known addresses."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.queries: list[str] = []

    def _one(self, q: str | AddressQuery) -> GeocodeResult:
        text = q.text() if isinstance(q, AddressQuery) else str(q)
        low = text.lower()
        if "fausse" in low or "bonne adresse" in low:
            return GeocodeResult(query=text, lon=INSIDE[0], lat=INSIDE[1], label="3 Rue Fausse",
                                 score=0.95, precision="housenumber", citycode="42218",
                                 postcode="42000", source="fake")
        if "hors lyon" in low:
            return GeocodeResult(query=text, lon=OUTSIDE_SEM[0], lat=OUTSIDE_SEM[1],
                                 label="10 Rue Hors Lyon", score=0.9, precision="housenumber",
                                 citycode="69383", postcode="69003", source="fake")
        if "rue vague" in low:
            return GeocodeResult(query=text, lon=INSIDE[0], lat=INSIDE[1], label="Rue Vague",
                                 score=0.7, precision="street", citycode="42218",
                                 postcode="42000", source="fake")
        return not_found(text, "adresse non trouvée (faux géocodeur)", source="fake")

    def geocode(self, query: str | AddressQuery) -> GeocodeResult:
        return self._one(query)

    def geocode_many(self, queries: Sequence[str | AddressQuery], *,
                     progress: Callable[[int], None] | None = None) -> list[GeocodeResult]:
        self.calls.append(len(queries))
        self.queries.extend(q.text() if isinstance(q, AddressQuery) else q for q in queries)
        return [self._one(q) for q in queries]


@pytest.fixture()
def fake() -> FakeGeocoder:
    return FakeGeocoder()


def test_fake_geocoder_follows_the_protocol(fake) -> None:
    assert isinstance(fake, Geocoder)


def _csv(tmp_path: Path, text: str, name: str = "sites.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _run(path: Path, engine, geocoder, **kw):
    frame, mapping = read_sites(path, **kw)
    return validate_sites(frame, mapping, engine=engine, geocoder=geocoder)


# ------------------------------------------------------------------------- columns


@pytest.mark.parametrize(("columns", "expected"), [
    (["Porteur", "Action", "Priorité", "Adresse", "Code postal", "Commune", "Latitude",
      "Longitude"],
     {"porteur": "Porteur", "action": "Action", "priorite": "Priorité", "adresse": "Adresse",
      "code_postal": "Code postal", "commune": "Commune", "lat": "Latitude",
      "lon": "Longitude"}),
    (["ADDRESS", "Zip code", "City", "lat", "lng", "Organization", "Project"],
     {"adresse": "ADDRESS", "code_postal": "Zip code", "commune": "City", "lat": "lat",
      "lon": "lng", "porteur": "Organization", "action": "Project"}),
    (["  adresse  du site ", "CP", "Ville", "X (Lambert 93)", "Y (Lambert 93)",
      "Porteur de projet", "Intitulé de l'action", "PRIORITES"],
     {"adresse": "  adresse  du site ", "code_postal": "CP", "commune": "Ville",
      "x": "X (Lambert 93)", "y": "Y (Lambert 93)", "porteur": "Porteur de projet",
      "action": "Intitulé de l'action", "priorite": "PRIORITES"}),
    (["Adresse mail", "Téléphone", "Code INSEE", "Lieu de l'action"],
     {"adresse": "Lieu de l'action"}),
])
def test_columns_are_detected_in_french_and_english(columns, expected) -> None:
    mapping = detect_columns(columns)
    got = {role: col for role, col in mapping.describe() if col}
    assert got == expected


def test_overrides_win_and_unknown_columns_are_named() -> None:
    mapping = detect_columns(["Lieu", "Adresse"], {"adresse": "lieu", "commune": None})
    assert mapping.adresse == "Lieu"
    with pytest.raises(InputFileError, match=r"Colonne « Nulle » .*colonnes présentes : Lieu"):
        detect_columns(["Lieu"], {"adresse": "Nulle"})
    with pytest.raises(InputFileError, match="Rôle de colonne inconnu"):
        detect_columns(["Lieu"], {"foo": "Lieu"})


# ------------------------------------------------------------------------- core behaviour


def test_every_row_out_in_order_with_output_columns(tmp_path, engine, fake) -> None:
    path = _csv(tmp_path, "Porteur;Action;Priorité;Adresse;Latitude;Longitude;Autre\n"
                "Asso 1;A;Mobilité;3 rue Fausse 42000 Saint-Étienne;;;x\n"
                "Asso 2;B;FLE;;45,4335;4,3790;y\n"
                "Asso 3;C;santé;introuvable;;;z\n"
                "Asso 4;D;;;;;\n"
                "Asso 5;E;Job dating;10 rue Hors Lyon;;;w\n")
    result = _run(path, engine, fake)
    out = result.frame
    assert list(out["ligne"]) == [2, 3, 4, 5, 6]
    assert list(out["Porteur"]) == ["Asso 1", "Asso 2", "Asso 3", "Asso 4", "Asso 5"]
    assert list(out.columns[:8]) == ["ligne", "Porteur", "Action", "Priorité", "Adresse",
                                     "Latitude", "Longitude", "Autre"]
    assert set(OUTPUT_COLUMNS) <= set(out.columns)
    assert list(out["status"]) == ["eligible", "eligible", "non_geocode", "non_geocode",
                                   "hors_territoire"]
    assert list(out["priorite"]) == ["mobilite", "linguistique", "sante", "autre",
                                     "entreprises"]
    assert out.loc[0, "geocodage_source"] == "fake"
    assert out.loc[1, "geocodage_source"] == batch.SOURCE_COORDONNEES
    assert out.loc[0, "code_qp"] == out.loc[1, "code_qp"] == "QN04212M"
    assert "ni adresse ni coordonnées" in out.loc[3, "motifs"]
    assert "faux géocodeur" in out.loc[2, "motifs"]
    s = result.summary
    assert s["total"] == 5 and sum(s["par_statut"].values()) == 5
    assert s["par_qpv"]["QN04212M"]["eligibles"] == 2
    assert s["par_priorite"]["mobilite"]["sites"] == 1
    assert [r["ligne"] for r in s["a_revoir"]] == [4, 5]
    assert s["notes"] == engine.reference.notes and s["notes"]
    json.dumps(s)  # JSON-able


def test_coordinates_win_over_an_address_and_the_row_says_so(tmp_path, engine, fake) -> None:
    path = _csv(tmp_path, "Adresse;Latitude;Longitude\n10 rue Hors Lyon;45,4335;4,3790\n")
    out = _run(path, engine, fake).frame
    assert out.loc[0, "status"] == "eligible"
    assert "coordonnées du fichier utilisées" in out.loc[0, "motifs"]
    assert fake.calls == []  # not geocoded


def test_unusable_coordinates_give_way_to_the_address(tmp_path, engine, fake) -> None:
    path = _csv(tmp_path, "Adresse;Latitude;Longitude\n3 rue Fausse;4,3790;45,4335\n")
    out = _run(path, engine, fake).frame
    assert out.loc[0, "status"] == "eligible"
    assert "semblent inversées" in out.loc[0, "motifs"]
    assert "adresse géocodée à la place" in out.loc[0, "motifs"]


def test_imprecise_geocoding_is_to_check(tmp_path, engine, fake) -> None:
    out = _run(_csv(tmp_path, "Adresse\nrue Vague\n"), engine, fake).frame
    assert out.loc[0, "status"] == "a_verifier"
    assert "rue seulement" in out.loc[0, "motifs"]


def test_lambert93_columns(tmp_path, engine, fake) -> None:
    x, y = engine.lonlat_to_l93([INSIDE[0]], [INSIDE[1]])
    path = _csv(tmp_path, f"Nom;X L93;Y L93\nA;{x[0]:.1f};{y[0]:.1f}\nB;4,38;45,43\n")
    out = _run(path, engine, fake).frame
    assert list(out["status"]) == ["eligible", "non_geocode"]
    assert out.loc[0, "lon"] == pytest.approx(INSIDE[0], abs=1e-6)
    assert "degrés" in out.loc[1, "motifs"]


def test_colliding_input_columns_are_suffixed(tmp_path, engine, fake) -> None:
    path = _csv(tmp_path, "status;lat;lon;porteur\nvu;45,4335;4,3790;Asso\n")
    out = _run(path, engine, fake).frame
    assert out.loc[0, "status (source)"] == "vu"
    assert out.loc[0, "lat (source)"] == "45,4335"
    assert out.loc[0, "porteur (source)"] == "Asso" and out.loc[0, "porteur"] == "Asso"
    assert out.loc[0, "status"] == "eligible"


def test_geocoding_goes_by_chunks_and_once_per_distinct_address(
        tmp_path, engine, fake, monkeypatch) -> None:
    monkeypatch.setattr(batch.validation, "GEOCODE_CHUNK", 3)
    rows = [f"{k} rue Fausse" for k in range(7)] * 2
    out = _run(_csv(tmp_path, "Adresse\n" + "\n".join(rows) + "\n"), engine, fake).frame
    assert fake.calls == [3, 3, 1]  # cached as it goes: an interrupted run keeps what is done
    assert len(out) == 14 and (out["status"] == "eligible").all()


def test_no_geocoder_available_is_a_reason_per_row(tmp_path, engine, monkeypatch) -> None:
    from qpv_geo.exceptions import GeocoderNotConfigured

    def refuse(*a, **k):
        raise GeocoderNotConfigured("aucun fichier d'adresses", hint="installez-le")

    monkeypatch.setattr("qpv_geo.batch.validation.geocoder_from_settings", refuse)
    path = _csv(tmp_path, "Adresse;Latitude;Longitude\n3 rue X;;\n;45,4335;4,3790\n")
    frame, mapping = read_sites(path)
    out = validate_sites(frame, mapping, engine=engine).frame
    assert list(out["status"]) == ["non_geocode", "eligible"]
    assert "géocodeur indisponible" in out.loc[0, "motifs"]


# ------------------------------------------------------------------------- hostile corpus


def _hostile(name: str) -> Path:
    return HOSTILE / name


@pytest.mark.parametrize(("name", "message"), [
    ("empty.csv", "vide"),
    ("header_only.csv", "qu'une ligne d'en-tête"),
    ("binary_garbage.csv", "ne ressemble pas à un tableau CSV"),
    ("no_recognisable_column.csv", "aucune colonne d'adresse ni de coordonnées.*Courriel"),
])
def test_whole_file_problems_say_what_to_do(name, message) -> None:
    with pytest.raises(InputFileError, match=message) as info:
        read_sites(_hostile(name))
    assert info.value.hint


def test_cp1252_from_excel(engine, fake) -> None:
    result = _run(_hostile("cp1252_excel.csv"), engine, fake)
    out = result.frame
    assert out.loc[0, "Porteur"] == "Association fictive Été"
    assert out.loc[1, "Porteur"] == "Association fictive Œuvre"
    assert out.loc[0, "status"] == "eligible"
    assert fake.queries[-1] == "42100 Saint-Étienne"  # postcode + commune only, still tried


def test_bom_comma_and_quoted_newline(engine, fake) -> None:
    out = _run(_hostile("utf8_bom_comma_quoted_newline.csv"), engine, fake).frame
    assert list(out.columns[:3]) == ["ligne", "Porteur", "Action"]
    assert out.loc[0, "Action"] == "Atelier\nsur deux lignes"
    assert out.loc[1, "Porteur"] == "Association fictive B, virgule"
    assert list(out["ligne"]) == [2, 3]  # records, as a spreadsheet counts them
    assert list(out["status"]) == ["eligible", "hors_territoire"]


def test_utf16_tab_text_from_excel(engine, fake) -> None:
    out = _run(_hostile("utf16_tab.txt"), engine, fake).frame
    assert out.loc[0, "status"] == "eligible"


def test_ragged_rows_keep_their_cells(engine, fake) -> None:
    out = _run(_hostile("ragged_rows.csv"), engine, fake).frame
    assert len(out) == 3
    assert out.loc[1, batch.EXTRA_COLUMN] == "10 champs au lieu de 8 : en trop | encore"
    assert "ligne irrégulière" in out.loc[1, "motifs"] and "en trop" in out.loc[1, "motifs"]
    assert list(out["status"]) == ["eligible", "eligible", "non_geocode"]


def test_fifty_thousand_character_cell(tmp_path, engine, fake) -> None:
    result = _run(_hostile("long_cell.csv"), engine, fake)
    out = result.frame
    assert len(out.loc[0, "Adresse"]) >= 50_000
    assert out.loc[0, "status"] == "non_geocode" and out.loc[1, "status"] == "eligible"
    xlsx = write_result(result, tmp_path / "r.xlsx")[0]
    back = read_validated(xlsx)
    assert len(back.loc[0, "Adresse"]) == batch.XLSX_CELL_MAX
    assert "tronqué" in back.loc[0, "Adresse"]
    csv_out = write_result(result, tmp_path / "r.csv")[0]
    assert len(read_validated(csv_out).loc[0, "Adresse"]) == len(out.loc[0, "Adresse"])


def test_swapped_lat_lon_is_a_row_reason(engine, fake) -> None:
    out = _run(_hostile("swapped_latlon.csv"), engine, fake).frame
    assert list(out["status"]) == ["non_geocode", "eligible"]
    assert "inversées" in out.loc[0, "motifs"]


def test_lambert_values_in_lat_lon_columns(engine, fake) -> None:
    out = _run(_hostile("lambert_in_latlon.csv"), engine, fake).frame
    assert (out["status"] == "non_geocode").all()
    assert out["motifs"].str.contains("Lambert-93").all()


def test_places_outside_sem(engine, fake) -> None:
    out = _run(_hostile("outside_sem.csv"), engine, fake).frame
    assert (out["status"] == "hors_territoire").all()
    assert "Roannais" in out.loc[1, "motifs"]


def test_duplicates_are_all_kept(engine, fake) -> None:
    out = _run(_hostile("duplicates.csv"), engine, fake).frame
    assert list(out["ligne"]) == [2, 3, 4]
    assert (out["status"] == "eligible").all()


def test_title_rows_and_blank_lines(engine, fake) -> None:
    frame, mapping = read_sites(_hostile("title_and_blank_lines.csv"))
    assert list(frame.index) == [4, 7]  # line numbers as in the spreadsheet
    result = validate_sites(frame, mapping, engine=engine, geocoder=fake)
    assert result.summary["lignes_titre_ignorees"] == [1]
    assert list(result.frame["status"]) == ["eligible", "hors_territoire"]


def test_unreadable_numbers_are_row_reasons(engine, fake) -> None:
    out = _run(_hostile("unreadable_numbers.csv"), engine, fake).frame
    assert (out["status"] == "non_geocode").all()
    assert "latitude illisible" in out.loc[0, "motifs"] and "45°26'N" in out.loc[0, "motifs"]
    assert "manquante" in out.loc[1, "motifs"]


def test_formula_injection_is_neutralised_in_csv_and_xlsx(tmp_path, engine, fake) -> None:
    from openpyxl import load_workbook

    result = _run(_hostile("formula_injection.csv"), engine, fake)
    csv_path = write_result(result, tmp_path / "r.csv")[0]
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert rows[0]["Porteur"].startswith("'=HYPERLINK")
    assert rows[0]["Action"].startswith("'+cmd")
    assert rows[0]["Priorité"] == "'@SUM(A1)"
    assert rows[0]["Note"] == "-4,5"  # a plain negative number stays a number
    assert rows[1]["Porteur"] == "'\tAssociation fictive tab"
    assert rows[1]["Action"] == "'-2+3"
    assert rows[1]["Note"] == "'\rretour"
    assert float(rows[0]["distance_bord_m"].replace(",", ".")) > 0
    wb = load_workbook(write_result(result, tmp_path / "r.xlsx")[0])
    ws = wb["Sites"]
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2], strict=True)}
    # XLSX: a text cell (no formula can run), shown as typed, without a quote
    assert row["Porteur"].data_type == "s" and row["Porteur"].value.startswith("=HYPERLINK")
    assert row["Distance au bord (m)"].data_type == "n"
    assert all(c.data_type != "f" for s in wb.worksheets for r in s.iter_rows() for c in r)
    assert wb.sheetnames == ["Sites", "Synthèse", "Données"]


def test_negative_distances_stay_numbers(tmp_path, engine, fake) -> None:
    path = _csv(tmp_path, "Latitude;Longitude\n45,4326;4,3872\n")
    result = _run(path, engine, fake)
    assert result.frame.loc[0, "distance_bord_m"] < 0
    text = write_result(result, tmp_path / "r.csv")[0].read_text(encoding="utf-8-sig")
    assert ";-262,9;" in text and "'-262" not in text


# ------------------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".geojson", ".gpkg"])
def test_outputs_round_trip_and_carry_the_notes(tmp_path, engine, fake, suffix) -> None:
    path = _csv(tmp_path, "Porteur;Adresse;Latitude;Longitude\nA;;45,4335;4,3790\n"
                "B;introuvable;;\nC;;45,4326;4,3872\n")
    result = _run(path, engine, fake)
    written = write_result(result, tmp_path / f"resultat{suffix}")
    tag = "" if suffix == ".csv" else f"-{suffix[1:]}"  # one synthesis per output file
    assert [p.name for p in written] == [f"resultat{suffix}", f"resultat{tag}-synthese.csv",
                                        f"resultat{tag}-synthese.json"]
    back = read_validated(written[0])
    assert list(back["ligne"]) == [2, 3, 4]
    assert list(back["status"]) == list(result.frame["status"])
    assert back["lon"].iloc[0] == pytest.approx(INSIDE[0])
    assert back["distance_bord_m"].iloc[2] < 0
    for note in engine.reference.notes:
        assert back["donnees"].str.contains(note, regex=False).all()
        assert note in written[1].read_text(encoding="utf-8-sig")
    summary = json.loads(written[2].read_text(encoding="utf-8"))
    assert summary["lignes_ecrites"] == summary["lignes_lues"] == 3


def test_csv_comma_separator_uses_decimal_point(tmp_path, engine, fake) -> None:
    result = _run(_csv(tmp_path, "Latitude;Longitude\n45,4335;4,3790\n"), engine, fake)
    path = write_result(result, tmp_path / "r.csv", sep=",")[0]
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert ",4.379," in raw.decode("utf-8-sig")
    assert read_validated(path)["lon"].iloc[0] == pytest.approx(4.379)


def test_read_validated_rejects_a_raw_file() -> None:
    with pytest.raises(InputFileError, match="n'est pas une sortie de qpv-geo batch"):
        read_validated(EXEMPLE)


def test_xlsx_input_with_sheet_choice(tmp_path, engine, fake) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "notes"
    wb.active.append(["rien"])
    ws = wb.create_sheet("sites")
    ws.append(["Porteur", "Latitude", "Longitude", "Code postal"])
    ws.append(["A", 45.4335, 4.379, 42000])
    ws.append(["B", "=1+1", None, None])
    path = tmp_path / "appel.xlsx"
    wb.save(path)
    with pytest.raises(InputFileError, match=r"Feuille « absente » .*notes, sites"):
        read_sites(path, sheet="absente")
    with pytest.raises(InputFileError, match="qu'une ligne d'en-tête"):
        read_sites(path)  # the first sheet is not the sites
    frame, mapping = read_sites(path, sheet="sites")
    assert frame.loc[2, "Code postal"] == "42000"
    out = validate_sites(frame, mapping, engine=engine, geocoder=fake).frame
    assert list(out["status"]) == ["eligible", "non_geocode"]


def test_geojson_points_input(tmp_path, engine, fake) -> None:
    import geopandas as gpd
    import shapely

    gdf = gpd.GeoDataFrame({"porteur": ["A", "B", "C"]},
                           geometry=[shapely.Point(*INSIDE), shapely.Point(*OUTSIDE_SEM), None],
                           crs=4326).to_crs(2154)
    path = tmp_path / "sites.gpkg"
    gdf.to_file(path, driver="GPKG")
    out = _run(path, engine, fake).frame
    assert list(out["status"]) == ["eligible", "hors_territoire", "non_geocode"]
    assert list(out["ligne"]) == [2, 3, 4]


# ------------------------------------------------------------------------- streaming, file API


def test_streamed_run_equals_in_memory_run(tmp_path, engine, fake, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    lines = ["Porteur;Adresse;Latitude;Longitude"]
    for k in range(57):
        if k % 5 == 0:
            lines.append(f"P{k};3 rue Fausse;;")
        else:
            lon = 4.30 + rng.random() * 0.15
            lat = 45.38 + rng.random() * 0.1
            lines.append(f"P{k};;{lat:.5f};{lon:.5f}".replace(".", ","))
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    whole = _run(path, engine, fake)
    monkeypatch.setattr(batch.validation, "CHUNK_ROWS", 10)
    monkeypatch.setattr(batch.validation, "KEEP_FRAME_MAX", 20)
    monkeypatch.setattr(batch.validation, "engine_from_settings", lambda s: engine, raising=False)
    monkeypatch.setattr("qpv_geo.eligibility.factory.engine_from_settings", lambda s=None: engine)
    result = validate_file(path, tmp_path / "out.csv", geocoder=fake, progress=False)
    assert result.streamed and len(result.frame) == 0
    back = read_validated(tmp_path / "out.csv")
    assert len(back) == 57 == result.summary["lignes_ecrites"]
    assert list(back["status"]) == list(whole.frame["status"])
    assert list(back["ligne"]) == list(range(2, 59))
    for key in ("par_statut", "par_qpv", "par_priorite", "total"):
        assert result.summary[key] == whole.summary[key]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.tuples(st.floats(45.3, 45.6), st.floats(4.2, 4.6)).map(
        lambda p: ("", f"{p[0]:.5f}", f"{p[1]:.5f}")),
    st.tuples(st.sampled_from(["3 rue Fausse", "introuvable", "rue vague", "", "=1+1"]),
              st.text(max_size=5), st.text(max_size=5)),
), min_size=1, max_size=40))
def test_batch_keeps_row_count_and_order(engine, rows) -> None:
    frame = pd.DataFrame({"Porteur": [f"P{i}" for i in range(len(rows))],
                          "Adresse": [r[0] for r in rows], "Latitude": [r[1] for r in rows],
                          "Longitude": [r[2] for r in rows]}, dtype=object)
    mapping = ColumnMapping(adresse="Adresse", lat="Latitude", lon="Longitude",
                            porteur="Porteur")
    out = validate_sites(frame, mapping, engine=engine, geocoder=FakeGeocoder()).frame
    assert len(out) == len(rows)
    assert list(out["Porteur"]) == list(frame["Porteur"])
    assert list(out["ligne"]) == list(range(2, len(rows) + 2))
    assert out["status"].isin(batch.STATUSES).all()


# ------------------------------------------------------------------------- integration, CLI


def test_sample_call_with_the_real_local_geocoder(tmp_path) -> None:
    result = validate_file(EXEMPLE, tmp_path / "resultat.xlsx", progress=False)
    out = result.frame
    raw = pd.read_csv(EXEMPLE, sep=";", dtype=str)
    assert len(out) == len(raw) == result.summary["lignes_ecrites"]
    assert list(out["Porteur"]) == list(raw["Porteur"])
    assert out["Porteur"].str.startswith("Association fictive").all()
    present = {s for s, k in result.summary["par_statut"].items() if k}
    assert present == {"eligible", "hors_qpv", "hors_territoire", "a_verifier", "non_geocode"}
    assert len(result.summary["par_priorite"]) == 8
    assert any("DÉMONSTRATION" in n for n in result.summary["notes"])
    assert (tmp_path / "resultat-xlsx-synthese.json").exists()


def test_cli_batch(tmp_path) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["batch", str(_hostile("swapped_latlon.csv")), "-o",
                                   str(out), "--marge", "30"])
    assert res.exit_code == 0, res.output
    assert "2 lignes lues, 2 lignes écrites" in res.output
    assert "Colonnes reconnues" in res.output
    assert read_validated(out)["status"].tolist() == ["non_geocode", "eligible"]
    res = CliRunner().invoke(app, ["batch", str(_hostile("empty.csv")), "-o", str(out)])
    assert res.exit_code == 2 and "vide" in res.output


def test_settings_margin_is_used(tmp_path, fake) -> None:
    from qpv_geo.eligibility.factory import engine_from_settings

    engine = engine_from_settings(Settings.from_env(marge_m=200.0))
    out = _run(_csv(tmp_path, "Latitude;Longitude\n45,4335;4,3790\n"), engine, fake).frame
    assert out.loc[0, "status"] == "a_verifier"  # 124 m from the edge, margin 200 m


def test_a_precision_column_sets_each_rows_margin(tmp_path, engine, fake) -> None:
    # five decimals as written (the zeros count): figures finer than the stated 3 m
    path = _csv(tmp_path, "Latitude;Longitude;Précision (m)\n45,43350;4,37900;3\n"
                          "45,43350;4,37900;\n45,43350;4,37900;beaucoup\n"
                          "45,4335;4,3790;3\n")
    result = _run(path, engine, fake)
    frame = result.frame
    # four decimals are a cell of ± 6,8 m: a stated 3 m cannot make them finer
    assert list(frame["marge_m"]) == [4.0, 11.0, 11.0, 8.0]
    assert frame.loc[0, "marge_motif"] == "marge 4 m = périmètre 1 m + position déclarée 3 m"
    assert "précision du point illisible" in frame.loc[2, "motifs"]


def test_numbers_of_a_column_read_as_each_cell_alone() -> None:
    """Issue 24: a column of plain numbers is parsed by Arrow, one with any other cell by the
    Python rule; both give each cell what the rule gives it alone (a one-cell column), signs
    of zero included."""
    from qpv_geo.batch import parse_numbers

    rng = np.random.default_rng(24)
    plain = [f"{v:.{int(d)}f}".replace(".", sep) for v, d, sep in
             zip(rng.uniform(-180, 180, 3000), rng.integers(0, 9, 3000),
                 rng.choice([",", "."], 3000), strict=True)]
    plain += ["", "-0", "-0,0", "+4.5", "45.", ".5", "0045", "1e3", "1E-3", "nan", "inf",
              "1e400", "1e-400", "12345678901234567890", "3.14159265358979323846264338"]
    odd = [" 45.4", "45,4 ", "1.234,5", "1,234.5", "808 000", "\u221245,4", "1_000",
           "\u0664\u0665", "4..5", "45,4,3", "abc", "\u00a045", "0x10", "--4"]
    for cells in (plain, plain + odd):
        col = pd.Series(cells * 2, dtype=object)
        got, bad = parse_numbers(col)
        for k, c in enumerate(cells):
            one, one_bad = parse_numbers(pd.Series([c], dtype=object))
            assert (got[k] == one[0] or (np.isnan(got[k]) and np.isnan(one[0]))), c
            assert np.signbit(got[k]) == np.signbit(one[0]) and bad[k] == one_bad[0], c
    assert np.isfinite(parse_numbers(pd.Series(plain, dtype=object))[0]).sum() > 2900
