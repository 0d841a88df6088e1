"""French contractions before territory names."""

from __future__ import annotations

import pytest

from qpv_geo._french import a, dans, de, hors


@pytest.mark.parametrize(("nom", "attendu"), [
    ("Saint-Étienne Métropole", "de Saint-Étienne Métropole"),
    ("SEM", "de SEM"),
    ("Argenteuil", "d'Argenteuil"),
    ("Évry-Courcouronnes", "d'Évry-Courcouronnes"),
    ("Le Havre", "du Havre"),
    ("Les Abymes", "des Abymes"),
    ("La Courneuve", "de la Courneuve"),
    ("L'Île-Saint-Denis", "de l'Île-Saint-Denis"),
    ("Métropole de Lyon", "de la Métropole de Lyon"),
    ("Eurométropole de Strasbourg", "de l'Eurométropole de Strasbourg"),
    ("CA Intercommunale du Nord de la Réunion (CINOR)",
     "de la CA Intercommunale du Nord de la Réunion (CINOR)"),
    ("Communauté d'agglomération du Bassin de Bourg-en-Bresse",
     "de la Communauté d'agglomération du Bassin de Bourg-en-Bresse"),
    ("Roanne", "de Roanne"),
    ("France", "de France"),
    ("Grand-Couronne", "de Grand-Couronne"),
    ("Grand Longwy Agglomération", "de Grand Longwy Agglomération"),
    ("EPT Boucle Nord de Seine", "de l'EPT Boucle Nord de Seine"),
    ("Pays de Montbéliard Agglomération", "du Pays de Montbéliard Agglomération"),
])
def test_de(nom: str, attendu: str) -> None:
    assert de(nom) == attendu


@pytest.mark.parametrize(("nom", "attendu"), [
    ("Saint-Étienne Métropole", "à Saint-Étienne Métropole"),
    ("Le Havre", "au Havre"),
    ("Les Abymes", "aux Abymes"),
    ("Argenteuil", "à Argenteuil"),
    ("Pays de Montbéliard Agglomération", "au Pays de Montbéliard Agglomération"),
    ("Métropole de Lyon", "à la Métropole de Lyon"),
])
def test_a(nom: str, attendu: str) -> None:
    assert a(nom) == attendu


def test_dans_and_hors() -> None:
    assert dans("Saint-Étienne Métropole") == "dans Saint-Étienne Métropole"
    assert dans("Métropole de Lyon") == "dans la Métropole de Lyon"
    assert dans("Le Havre") == "dans le Havre"
    assert hors("SEM") == "hors SEM"
    assert hors("Argenteuil") == "hors Argenteuil"
    assert hors("Métropole de Lyon") == "hors de la Métropole de Lyon"
    assert hors("Le Havre") == "hors du Havre"


def test_numbers_are_written_the_french_way_without_touching_the_rest() -> None:
    """Thousands apart by a space, and nothing else of the sentence changed: a file name with
    a comma kept its comma (the whole message used to go through ``.replace(",", " ")``)."""
    import io
    import zipfile

    from qpv_geo._french import nombre
    from qpv_geo.reference.zipsafe import check_sizes

    assert nombre(16384) == "16 384" and nombre(1_048_575.4) == "1 048 575" and nombre(7) == "7"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * 3_000_000)
    with zipfile.ZipFile(buf) as zf, pytest.raises(ValueError) as err:
        check_sizes(zf, "sites, appel 2026.xlsx", max_total_mb=1, max_ratio=100.0)
    assert "sites, appel 2026.xlsx : 3 Mo une fois décompressé" in str(err.value)
