"""Build ``communes_france.csv.gz`` from the npm package @etalab/decoupage-administratif.

Usage (in a temporary folder)::

    npm pack @etalab/decoupage-administratif@6.0.0 && tar xzf etalab-*.tgz
    python make_communes_france.py package/data

Keeps, for every commune (actuelle, déléguée, associée, arrondissement municipal): INSEE code,
name, département, postcodes, the current commune it belongs to and its EPCI (SIREN). Written
with a fixed gzip mtime so that the same input gives the same bytes (and sha256).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from pathlib import Path

TYPES = {"commune-actuelle": "C", "commune-deleguee": "D", "commune-associee": "A",
         "arrondissement-municipal": "M"}


def main(data_dir: str) -> None:
    src = Path(data_dir)
    communes = json.loads((src / "communes.json").read_text(encoding="utf-8"))
    epci = json.loads((src / "epci.json").read_text(encoding="utf-8"))
    epci_of = {m["code"]: e["code"] for e in epci for m in e["membres"]}
    by_code = {c["code"]: c for c in communes if c["type"] == "commune-actuelle"}
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\n")
    w.writerow(["insee", "nom", "type", "departement", "codes_postaux", "commune", "epci"])
    for c in sorted(communes, key=lambda c: (c["code"], c["type"])):
        parent = c.get("chefLieu") or c.get("commune") or c["code"]
        pcs = c.get("codesPostaux") or by_code.get(parent, {}).get("codesPostaux") or []
        w.writerow([c["code"], c["nom"], TYPES[c["type"]], c.get("departement", ""),
                    " ".join(pcs), parent, epci_of.get(parent, "")])
    out = Path(__file__).with_name("communes_france.csv.gz")
    with open(out, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0,
                                              compresslevel=9, filename="") as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    print(out, out.stat().st_size)


if __name__ == "__main__":
    main(sys.argv[1])
