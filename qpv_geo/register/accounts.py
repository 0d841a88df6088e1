"""Instructors' accounts for the register's web pages: ``nom:empreinte`` lines in a file
named by ``QPV_GEO_REGISTRE_COMPTES``; the password is never stored, only its PBKDF2-SHA256
hash with a random salt (``pbkdf2_sha256$iterations$salt$hash``, base64)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from qpv_geo.exceptions import RegistreError

ITERATIONS = 240_000
_PREFIX = "pbkdf2_sha256"


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """The stored form of ``password`` (random salt)."""
    if len(password) < 8:
        raise RegistreError("Mot de passe trop court (8 caractères au moins).",
                            hint="Choisissez une phrase de passe plus longue.")
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"{_PREFIX}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        prefix, iterations, salt, digest = stored.split("$")
        if prefix != _PREFIX:
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"),
                                       base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(computed, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


#: What the password of an unknown name is checked against: the same work as for a known
#: name (one PBKDF2 of :data:`ITERATIONS` rounds), so the time of the answer does not tell
#: which names have an account. No password hashes to it (its digest is all zeros).
DUMMY_HASH = (f"{_PREFIX}${ITERATIONS}${base64.b64encode(bytes(16)).decode()}"
              f"${base64.b64encode(bytes(32)).decode()}")


def authenticate(comptes: dict[str, str], nom: str, password: str) -> bool:
    """True when ``password`` is the one of account ``nom``; an unknown ``nom`` costs the
    same hash as a known one (checked against :data:`DUMMY_HASH`)."""
    stored = comptes.get(nom)
    ok = verify_password(password, stored if stored is not None else DUMMY_HASH)
    return ok and stored is not None


def load_comptes(path: str | Path) -> dict[str, str]:
    """``{nom: empreinte}`` from an accounts file (``#`` comments and blank lines skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RegistreError(f"Fichier des comptes illisible : {path} ({exc.strerror}).",
                            hint="Vérifiez QPV_GEO_REGISTRE_COMPTES.") from exc
    comptes = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        nom, sep, empreinte = line.rpartition(":")
        if not sep or not nom.strip() or not empreinte.startswith(_PREFIX + "$"):
            raise RegistreError(f"{path}, ligne {n} : « nom:empreinte » attendu.",
                                hint="Créez les lignes avec « qpv-geo registre compte NOM ».")
        comptes[nom.strip()] = empreinte
    return comptes


def compte_line(nom: str, password: str) -> str:
    """The accounts-file line of ``nom``."""
    nom = nom.strip()
    if not nom or ":" in nom:
        raise RegistreError("Nom de compte vide ou contenant « : ».",
                            hint="Exemple : qpv-geo registre compte « Ana Martin »")
    return f"{nom}:{hash_password(password)}"
