"""Write the hostile-input corpus of tests/test_batch.py (seeded; run from the repo root).

Each file is described in tests/data/README.md. Points « inside » are inside QPV QN04212M
(Tardy Tarentaize Beaubrun Couriot, Saint-Étienne) in the shipped perimeters (simplified
copy then, exact geometry now: same verdicts).
"""

from __future__ import annotations

import random
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


if __name__ == "__main__":
    main()
