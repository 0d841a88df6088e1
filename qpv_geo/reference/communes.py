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
from qpv_geo.reference.store import package_data_dir
from qpv_geo.reference.text import ABBREVIATIONS, normalize, tokens
from qpv_geo.settings import SIREN_SEM

FILE = "communes_france.csv.gz"
_KINDS = {"C": "commune", "D": "commune déléguée", "A": "commune associée",
          "M": "arrondissement municipal", "H": "ancienne commune"}

#: Former communes of Saint-Étienne Métropole merged into a current one before the COG
#: lists them as déléguée/associée (INSEE, « Historique des communes »): still written in
#: addresses (« 40 Passage des Anciens Combattants Terrenoire »). The BAN file's
#: ``nom_ancienne_commune`` gives the same names to the local index; this list gives them to
#: every path (the online service included). Name → INSEE code of the current commune.
FORMER_COMMUNES = {
    "Terrenoire": "42218",                 # merged into Saint-Étienne, 1970
    "Saint-Victor-sur-Loire": "42218",     # merged into Saint-Étienne, 1969
    "Izieux": "42207",                     # merged into Saint-Chamond, 1964
    "Saint-Julien-en-Jarez": "42207",      # merged into Saint-Chamond, 1964
    "Saint-Martin-en-Coailleux": "42207",  # merged into Saint-Chamond, 1964
    "Saint-Genis-Terrenoire": "42225",     # with La Cula, Genilac, 1973
}

#: The départements (code → name), to read « Saint-Étienne (Loire) » or « (42) ».
DEPARTEMENTS = {
    "01": "Ain", "02": "Aisne", "03": "Allier", "04": "Alpes-de-Haute-Provence",
    "05": "Hautes-Alpes", "06": "Alpes-Maritimes", "07": "Ardèche", "08": "Ardennes",
    "09": "Ariège", "10": "Aube", "11": "Aude", "12": "Aveyron", "13": "Bouches-du-Rhône",
    "14": "Calvados", "15": "Cantal", "16": "Charente", "17": "Charente-Maritime", "18": "Cher",
    "19": "Corrèze", "2A": "Corse-du-Sud", "2B": "Haute-Corse", "21": "Côte-d'Or",
    "22": "Côtes-d'Armor", "23": "Creuse", "24": "Dordogne", "25": "Doubs", "26": "Drôme",
    "27": "Eure", "28": "Eure-et-Loir", "29": "Finistère", "30": "Gard", "31": "Haute-Garonne",
    "32": "Gers", "33": "Gironde", "34": "Hérault", "35": "Ille-et-Vilaine", "36": "Indre",
    "37": "Indre-et-Loire", "38": "Isère", "39": "Jura", "40": "Landes", "41": "Loir-et-Cher",
    "42": "Loire", "43": "Haute-Loire", "44": "Loire-Atlantique", "45": "Loiret", "46": "Lot",
    "47": "Lot-et-Garonne", "48": "Lozère", "49": "Maine-et-Loire", "50": "Manche",
    "51": "Marne", "52": "Haute-Marne", "53": "Mayenne", "54": "Meurthe-et-Moselle",
    "55": "Meuse", "56": "Morbihan", "57": "Moselle", "58": "Nièvre", "59": "Nord", "60": "Oise",
    "61": "Orne", "62": "Pas-de-Calais", "63": "Puy-de-Dôme", "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées", "66": "Pyrénées-Orientales", "67": "Bas-Rhin", "68": "Haut-Rhin",
    "69": "Rhône", "70": "Haute-Saône", "71": "Saône-et-Loire", "72": "Sarthe", "73": "Savoie",
    "74": "Haute-Savoie", "75": "Paris", "76": "Seine-Maritime", "77": "Seine-et-Marne",
    "78": "Yvelines", "79": "Deux-Sèvres", "80": "Somme", "81": "Tarn", "82": "Tarn-et-Garonne",
    "83": "Var", "84": "Vaucluse", "85": "Vendée", "86": "Vienne", "87": "Haute-Vienne",
    "88": "Vosges", "89": "Yonne", "90": "Territoire de Belfort", "91": "Essonne",
    "92": "Hauts-de-Seine", "93": "Seine-Saint-Denis", "94": "Val-de-Marne", "95": "Val-d'Oise",
    "971": "Guadeloupe", "972": "Martinique", "973": "Guyane", "974": "La Réunion",
    "976": "Mayotte",
}


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
        """True when ``key`` (a :func:`name_key`, or words of :func:`tokens`) is the name
        of some commune (« lyon 3 e » is Lyon's 3rd arrondissement)."""
        return key in self._by_key or _canon(key) in self._by_key

    def by_key(self, key: str) -> list[Commune]:
        """Communes of a :func:`name_key` (or words of :func:`tokens`)."""
        found = self._by_key.get(key)
        return list(found if found is not None else self._by_key.get(_canon(key), ()))

    def by_postcode(self, postcode: str) -> list[Commune]:
        """Current communes (and arrondissements) served by ``postcode``."""
        return list(self._by_pc.get(postcode.strip(), ()))

    def is_postcode(self, postcode: str) -> bool:
        """True when ``postcode`` is a postcode of some commune."""
        return postcode.strip() in self._by_pc


_ARTICLES = frozenset({"le", "la", "les", "l"})
_DIGIT = re.compile(r"\d")
#: What may follow an arrondissement's number: « Lyon 3e », « 3ème », « 1er », « 15e arr. ».
_ARR_SUFFIX = frozenset({"e", "eme", "em", "er", "ere", "arrondissement", "arr", "arrt",
                         "ardt", "arrdt", "ar"})
_ARR_NUMBER = re.compile(r"^0?(\d{1,2})(?:e|eme|em|er|ere)?$")


def _canon(key: str) -> str:
    """« lyon 3 e arrondissement », « lyon 3eme », « lyon 03 » → ``lyon 3``: the one key of
    an arrondissement municipal, however its number is written; other keys unchanged."""
    if not _DIGIT.search(key):
        return key
    words = key.split()
    for k in range(1, len(words)):
        m = _ARR_NUMBER.match(words[k])
        if m and all(w.isalpha() for w in words[:k]) \
                and all(w in _ARR_SUFFIX for w in words[k + 1:]):
            return " ".join([*words[:k], m.group(1)])
    return key


def name_key(name: str) -> str:
    """Key of a commune name: normalised words, abbreviations expanded (« St-Étienne » →
    ``saint etienne``), articles kept (« Le Saint » is not « Saint »); an arrondissement
    municipal's number in one form (« Lyon 3e Arrondissement » → ``lyon 3``)."""
    if _DIGIT.search(name):  # « Lyon 2e Arrondissement »: numbers split as tokens() does
        return _canon(" ".join(tokens(name)))
    return " ".join([ABBREVIATIONS.get(w, w) for w in normalize(name).split()])


def departement_of(text: str) -> str | None:
    """The département code written as « Loire », « 42 » or « 2A » (None otherwise)."""
    key = normalize(text).replace(" ", "")
    code = key.upper()
    if code in DEPARTEMENTS:
        return code
    return _DEP_BY_NAME.get(key)


def departement_of_postcode(postcode: str) -> str:
    """The département of a postcode (CEDEX codes too): « 42029 » → 42, « 97200 » → 972,
    « 20000 » → 2A/2B is unknown from the code alone: ``20``."""
    return postcode[:3] if postcode.startswith("97") else postcode[:2]


_DEP_BY_NAME = {normalize(n).replace(" ", ""): c for c, n in DEPARTEMENTS.items()}


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
    directory = package_data_dir("reference")
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
    by_insee: dict[str, Commune] = {}
    for line in lines[1:]:  # no quoting in this file (make_communes_france.py): plain split
        insee, nom, kind, dep, pcs, current, epci = line.split(";")
        communes.append(Commune(insee, nom, kind, dep, tuple(pcs.split()), current, epci))
        if kind == "C":
            by_insee[insee] = communes[-1]
    for nom, insee in FORMER_COMMUNES.items():
        c = by_insee[insee]  # the current commune: its code, postcodes and EPCI
        communes.append(Commune(insee, nom, "H", c.departement, c.codes_postaux, insee, c.epci))
    return CommuneList(communes, sha256=actual, source=entry.get("source", ""),
                       millesime=entry.get("millesime", ""))
