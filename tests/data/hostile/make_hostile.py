"""Write the hostile-input corpus of tests/test_batch.py (seeded; run from the repo root).

Each file is described in tests/data/README.md. Points « inside » are inside QPV QN04212M
(Tardy Tarentaize Beaubrun Couriot, Saint-Étienne) in the shipped perimeters (simplified
copy then, exact geometry now: same verdicts).
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IN_LAT, IN_LON = "45,4335", "4,3790"  # inside a QPV of SEM (see tests/test_batch.py)
HEADER = "Porteur;Action;Priorité;Adresse;Code postal;Commune;Latitude;Longitude"


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def main() -> None:
    rng = random.Random(4)
    write("cp1252_excel.csv", (
        "Porteur;Action;Priorité;Adresse;Code postal;Commune\r\n"
        "Association fictive Été;Français à visée pro;Linguistique;3 rue Fausse;42000;"
        "Saint-Étienne\r\n"
        "Association fictive Œuvre;Crèche;Garde d'enfants;;42100;Saint-Étienne\r\n"
    ).encode("cp1252"))
    write("utf8_bom_comma_quoted_newline.csv", (
        "\ufeffPorteur,Action,Priorité,Latitude,Longitude\r\n"
        '"Association fictive A","Atelier\nsur deux lignes",Mobilité,45.4335,4.3790\r\n'
        '"Association fictive B, virgule",Forum,Communication,45.70,4.00\r\n'
    ).encode("utf-8"))
    write("utf16_tab.txt", (
        "Porteur\tLatitude\tLongitude\r\nAssociation fictive Tab\t45,4335\t4,3790\r\n"
    ).encode("utf-16"))
    write("ragged_rows.csv", (
        f"{HEADER}\n"
        f"Association fictive 1;A;Santé;;;;{IN_LAT};{IN_LON}\n"
        f"Association fictive 2;B;Santé;;;;{IN_LAT};{IN_LON};en trop;encore\n"
        "Association fictive 3;C\n"
    ).encode())
    write("empty.csv", b"")
    write("header_only.csv", f"{HEADER}\n".encode())
    write("long_cell.csv", (
        f"{HEADER}\nAssociation fictive Longue;A;Santé;{'rue ' * 12_500};42000;Saint-Étienne;;\n"
        f"Association fictive Courte;B;Santé;;;;{IN_LAT};{IN_LON}\n"
    ).encode())
    write("binary_garbage.csv", bytes(rng.randrange(256) for _ in range(4096)))
    write("swapped_latlon.csv", (
        f"{HEADER}\nAssociation fictive Inversée;A;Mobilité;;;;4,3790;45,4335\n"
        f"Association fictive Juste;B;Mobilité;;;;{IN_LAT};{IN_LON}\n"
    ).encode())
    write("lambert_in_latlon.csv", (
        f"{HEADER}\nAssociation fictive L93;A;Santé;;;;6 482 000;808 000\n"
        f"Association fictive L93 bis;B;Santé;;;;6482000,5;808000,5\n"
    ).encode())
    write("outside_sem.csv", (
        f"{HEADER}\nAssociation fictive Lyon;A;Santé;10 rue Hors Lyon;69003;Lyon;;\n"
        "Association fictive Roanne;B;Santé;;;;46,0396;4,0790\n"
        "Association fictive Paris;C;Santé;;;;48,8566;2,3522\n"
    ).encode())
    write("duplicates.csv", (
        f"{HEADER}\n" + f"Association fictive Double;A;Santé;;;;{IN_LAT};{IN_LON}\n" * 3
    ).encode("utf-8"))
    write("formula_injection.csv", (
        "Porteur;Action;Priorité;Latitude;Longitude;Note\n"
        f'"=HYPERLINK(""http://x.invalid"";""clic"")";+cmd|\' /C calc\'!A0;@SUM(A1);{IN_LAT};'
        f"{IN_LON};-4,5\n"
        f'"\tAssociation fictive tab";-2+3;Santé;{IN_LAT};{IN_LON};"\rretour"\n'
    ).encode())
    write("no_recognisable_column.csv",
          "Nom;Téléphone;Courriel\nDupont;0477000000;a@b.invalid\n".encode())
    write("title_and_blank_lines.csv", (
        "Appel à projets 2025 — Cité de l'emploi;;\n;;\n"
        "Porteur;Latitude;Longitude\n"
        f"Association fictive Titre;{IN_LAT};{IN_LON}\n;;\n\n"
        "Association fictive Après le vide;45,70;4,00\n"
    ).encode())
    write("unreadable_numbers.csv", (
        "Porteur;Lat;Lng\nAssociation fictive DMS;45°26'N;4°23'E\n"
        "Association fictive Vide;45,4335;\n"
    ).encode())

    robustness()


def _xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "sites"
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The same zip with some members replaced (deflated)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
        for name, content in replace.items():
            if name not in src.namelist():
                dst.writestr(name, content)
    return out.getvalue()


def robustness() -> None:
    """Files of issue 10 (data loss, bounded work, clean errors) and issue 12 (batch input)."""
    rows = [f"Association fictive {i};Action {i};Santé;;;;{IN_LAT};{IN_LON}" for i in range(99)]
    rows[4] = f'Association fictive "guillemet;Action 4;Santé;;;;{IN_LAT};{IN_LON}'
    rows[4] = f'"Association fictive guillemet;Action 4;Santé;;;;{IN_LAT};{IN_LON}'
    write("unclosed_quote.csv", (HEADER + "\n" + "\n".join(rows) + "\n").encode())
    lines = [f"Association fictive Été {i};Crèche {i};Santé;;;;{IN_LAT};{IN_LON}"
             for i in range(300)]
    body = [ln.encode("utf-8") for ln in lines]
    body[199] = lines[199].encode("cp1252")
    write("mixed_encoding.csv", HEADER.encode() + b"\n" + b"\n".join(body) + b"\n")
    pad = [f"Association fictive {i};Action {i};Santé;;;;{IN_LAT};{IN_LON}" for i in range(1500)]
    data = (HEADER + "\n" + "\n".join(pad) + "\n").encode()
    data += f"Association\x00 fictive NUL;A;Santé;;;;{IN_LAT};{IN_LON}\n".encode()
    assert len(data) > 1 << 16
    write("nul_after_64k.csv", data)
    write("lieu_de_realisation.csv", (
        "Porteur;Action;Lieu de réalisation;Code postal;Commune\n"
        "Association fictive Lieu;A;3 rue Fausse;42000;Saint-Étienne\n").encode())
    write("commune_only.csv", (
        "Porteur;Action;Code postal;Commune\n"
        "Association fictive 1;A;42000;Saint-Étienne\n"
        "Association fictive 2;B;42000;Saint-Étienne\n").encode())
    lat, lon = float(IN_LAT.replace(",", ".")), float(IN_LON.replace(",", "."))
    head = ["Porteur", "Latitude", "Longitude", "Note"]
    write("formula_no_cache.xlsx", _xlsx([
        head, ["Association fictive 1", lat, lon, "a"],
        ["=A2", "=B2", "=C2", "=D2"],  # openpyxl writes formulas without cached values
        ["Association fictive 3", lat, lon, "=1+1"],
    ]))
    write("blank_rows.xlsx", _xlsx([
        head, ["Association fictive 1", lat, lon, "a"], [], [None, None],
        ["Association fictive 4", lat, lon, "b"], [], ["Association fictive 6", lat, lon, "c"],
    ]))
    sheet_name = "xl/worksheets/sheet1.xml"
    base = _xlsx([head, ["Association fictive 1", lat, lon, "LAUGHS"]])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        sheet = zf.read(sheet_name)
    dtd = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
           + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else
                                                       b"&lol;") * 10) for i in range(1, 10))
           + b"]>\n")
    write("billion_laughs.xlsx", _rezip(base, {sheet_name: dtd + sheet.replace(
        b"LAUGHS", b"&lol9;")}))
    base = _xlsx([head, ["x", lat, lon, "BOMB"]])
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        sheet = zf.read(sheet_name)
    big = b"a" * (40 << 20)  # 40 MB of one letter in one cell: ~40 KB deflated (ratio ~1000)
    write("zip_bomb.xlsx", _rezip(base, {sheet_name: sheet.replace(b"BOMB", big)}))
    tall = _xlsx([head, ["Association fictive 1", lat, lon, "a"]])
    with zipfile.ZipFile(io.BytesIO(tall)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    import re

    sheet = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:D5970000"/>', sheet)
    write("declared_millions_of_rows.xlsx", _rezip(tall, {"xl/worksheets/sheet1.xml": sheet}))
    geo()


def geo() -> None:
    import warnings

    import geopandas as gpd
    import pandas as pd
    import pyogrio

    lat, lon = float(IN_LAT.replace(",", ".")), float(IN_LON.replace(",", "."))
    (HERE / "unclosed_ring.geojson").write_text(
        '{"type":"FeatureCollection","features":[\n'
        '{"type":"Feature","properties":{"Porteur":"Association fictive A"},"geometry":'
        f'{{"type":"Point","coordinates":[{lon},{lat}]}}}},\n'
        '{"type":"Feature","properties":{"Porteur":"Association fictive B"},"geometry":'
        '{"type":"Polygon","coordinates":[[[4.37,45.43],[4.38,45.43],[4.38,45.44]]]}},\n'
        '{"type":"Feature","properties":{"Porteur":"Association fictive C"},"geometry":'
        f'{{"type":"Point","coordinates":[{lon},{lat}]}}}}\n]}}\n', encoding="utf-8")
    frame = pd.DataFrame({"Porteur": ["Association fictive G"], "Adresse": ["3 rue Fausse"],
                          "Commune": ["Saint-Étienne"]})
    for name in ("no_geometry.gpkg", "two_layers.gpkg"):
        (HERE / name).unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(frame, HERE / "no_geometry.gpkg", layer="sites")
        points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy([lon], [lat]), crs=4326)
        points.to_file(HERE / "two_layers.gpkg", layer="sites")
        points.to_file(HERE / "two_layers.gpkg", layer="autres_sites", mode="a")


if __name__ == "__main__":
    main()
