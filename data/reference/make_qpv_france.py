"""Build ``qpv2024_france_simplifiee.geojson.gz`` (all 1,609 QPV, simplified ≈ 10 m).

Input: ``qpv2024_simplified_national.original.geojson`` and ``analyse_qpv.original.csv`` of the
shared data folder (see PROVENANCE-qpv-france.md). The geometry and the official attributes are
copied unchanged (``fid`` dropped); ``lib_epci`` is added from the INSEE table (by ``siren_epci``)
and ``precision_m`` (12 m: simplified copy, edges off by up to ≈ 10–12 m) to each feature.
Output is gzip-compressed with a fixed mtime so that the sha256 is reproducible.

Usage: python make_qpv_france.py SHARED_DIR
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

PRECISION_M = 12.0


def main(shared: Path) -> None:
    src = json.loads((shared / "qpv2024_simplified_national.original.geojson").read_text("utf-8"))
    epci: dict[str, str] = {}
    with open(shared / "analyse_qpv.original.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("siren_epci") and row.get("lib_epci"):
                epci.setdefault(row["siren_epci"], row["lib_epci"])
    features = []
    for f in src["features"]:
        p = {k: v for k, v in f["properties"].items() if k != "fid"}
        p["lib_epci"] = epci.get(p.get("siren_epci") or "")
        p["precision_m"] = PRECISION_M
        features.append({"type": "Feature", "properties": p, "geometry": f["geometry"]})
    out = {"type": "FeatureCollection", "name": "qpv2024_france_simplifiee",
           "features": features}
    data = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    target = Path(__file__).with_name("qpv2024_france_simplifiee.geojson.gz")
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                  filename="") as gz:
        gz.write(data)
    print(target, len(features))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
