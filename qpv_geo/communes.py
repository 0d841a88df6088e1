"""The national list of communes with their postcodes (INSEE COG + La Poste), for reading the
commune and postcode written in an address.

Shipped as ``data/reference/communes_france.csv.gz`` (from the npm package
``@etalab/decoupage-administratif``, Licence Ouverte; provenance, millésime and sha256 in the
reference manifest, layer ``communes_france``). :func:`communes_france` loads it once and checks
its sha256. :meth:`CommuneList.by_name` and :meth:`CommuneList.by_postcode` resolve what a user
typed; :attr:`Commune.in_sem` says whether it belongs to Saint-Étienne Métropole.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

from qpv_geo._files import sha256_file
from qpv_geo.exceptions import ReferenceDataError
from qpv_geo.geocoding.base import ABBREVIATIONS, normalize, tokens
from qpv_geo.settings import SIREN_SEM

FILE = "communes_france.csv.gz"
_KINDS = {"C": "commune", "D": "commune déléguée", "A": "commune associée",
          "M": "arrondissement municipal"}


@dataclass(frozen=True)
class Commune:
    """A commune (or commune déléguée/associée, arrondissement municipal) of the COG."""

    insee: str
    nom: str
    kind: str            # C (commune), D (déléguée), A (associée), M (arrondissement)
    departement: str
    codes_postaux: tuple[str, ...]
    commune: str         # INSEE code of the current commune it belongs to (itself for C)
    epci: str            # SIREN of the EPCI of that current commune ("" when none)

    @property
    def in_sem(self) -> bool:
        """True when the (current) commune is a member of Saint-Étienne Métropole."""
        return self.epci == SIREN_SEM

    @property
    def label(self) -> str:
        """« Lyon (69) » — name and département, to tell homonyms apart."""
        return f"{self.nom} ({self.departement})" if self.departement else self.nom


class CommuneList:
    """Communes indexed by INSEE code, by normalised name and by postcode."""

    def __init__(self, communes: list[Commune], *, sha256: str, source: str,
                 millesime: str) -> None:
        self.sha256, self.source, self.millesime = sha256, source, millesime
        self._communes = communes
        self.by_insee: dict[str, Commune] = {}
        self._by_pc: dict[str, list[Commune]] = {}
        for c in communes:
            if c.kind == "C" or c.insee not in self.by_insee:
                self.by_insee[c.insee] = c
            if c.kind in ("C", "M"):
                for p in c.codes_postaux:
                    self._by_pc.setdefault(p, []).append(c)

    @functools.cached_property
    def _by_key(self) -> dict[str, list[Commune]]:
        """Communes by :func:`name_key`, built on the first name lookup (≈ 0.3 s for the
        national list: a territory or a verdict on coordinates never needs it)."""
        by_key: dict[str, list[Commune]] = {}
        for c in self._communes:
            key = name_key(c.nom)
            by_key.setdefault(key, []).append(c)
            first, _, rest = key.partition(" ")
            if c.epci == SIREN_SEM and first in _ARTICLES and rest:
                # « Chambon-Feugerolles », « Talaudière »: the article is often left out
                # (only for SEM: « Le Saint » must not answer « Saint »)
                by_key.setdefault(rest, []).append(c)
        return by_key

    def __len__(self) -> int:
        return len(self.by_insee)

    def current(self, commune: Commune) -> Commune:
        """The current commune a déléguée/associée/arrondissement belongs to (or itself)."""
        return self.by_insee.get(commune.commune, commune)

    def by_name(self, name: str) -> list[Commune]:
        """Communes whose normalised name is exactly ``name``'s (accents, case, « St »)."""
        return list(self._by_key.get(name_key(name), ()))

    def has_key(self, key: str) -> bool:
        """True when ``key`` (a :func:`name_key`) is the name of some commune."""
        return key in self._by_key

    def by_key(self, key: str) -> list[Commune]:
        """Communes of a :func:`name_key`."""
        return list(self._by_key.get(key, ()))

    def by_postcode(self, postcode: str) -> list[Commune]:
        """Current communes (and arrondissements) served by ``postcode``."""
        return list(self._by_pc.get(postcode.strip(), ()))

    def is_postcode(self, postcode: str) -> bool:
        """True when ``postcode`` is a postcode of some commune."""
        return postcode.strip() in self._by_pc


_ARTICLES = frozenset({"le", "la", "les", "l"})
_DIGIT = re.compile(r"\d")


def name_key(name: str) -> str:
    """Key of a commune name: normalised words, abbreviations expanded (« St-Étienne » →
    ``saint etienne``), articles kept (« Le Saint » is not « Saint »)."""
    if _DIGIT.search(name):  # « Lyon 2e Arrondissement »: numbers split as tokens() does
        return " ".join(tokens(name))
    return " ".join([ABBREVIATIONS.get(w, w) for w in normalize(name).split()])


def _manifest_entry(directory: Path) -> dict[str, str]:
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        return manifest["layers"]["communes_france"]
    except (OSError, ValueError, KeyError) as exc:
        raise ReferenceDataError(
            "Liste nationale des communes absente du manifeste des données de référence.",
            hint="Réinstallez qpv-geo (le fichier data/reference/communes_france.csv.gz est "
            "embarqué).") from exc


@functools.lru_cache(maxsize=1)
def communes_france() -> CommuneList:
    """The shipped national list of communes (checked against its sha256, loaded once)."""
    from qpv_geo.geocoding.files import _package_data_dir

    directory = _package_data_dir("reference")
    entry = _manifest_entry(directory)
    path = directory / entry.get("file", FILE)
    if not path.is_file():
        raise ReferenceDataError(f"Liste des communes introuvable : {path}.",
                                 hint="Réinstallez qpv-geo ou restaurez le dépôt.")
    actual = sha256_file(path)
    if actual != entry.get("sha256"):
        raise ReferenceDataError(
            f"Liste des communes {path.name} : somme de contrôle inattendue ({actual[:12]}…).",
            hint="Ne modifiez pas les fichiers de référence à la main ; restaurez le dépôt.")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines()
    header = lines[0].split(";")
    if header != ["insee", "nom", "type", "departement", "codes_postaux", "commune", "epci"]:
        raise ReferenceDataError(f"Liste des communes {path.name} : colonnes inattendues.",
                                 hint="Réinstallez qpv-geo ou restaurez le dépôt.")
    communes = []
    for line in lines[1:]:  # no quoting in this file (make_communes_france.py): plain split
        insee, nom, kind, dep, pcs, current, epci = line.split(";")
        communes.append(Commune(insee, nom, kind, dep, tuple(pcs.split()), current, epci))
    return CommuneList(communes, sha256=actual, source=entry.get("source", ""),
                       millesime=entry.get("millesime", ""))
