"""Build the shipped QPV layers from the full-precision extract and the simplified copy.

Run from this folder: python make_qpv_layers.py SHARED_DATA_DIR (the folder holding
``qpv-2024-sem-fullprecision/`` and ``qpv-2024-simplified/``). The files are committed; this
script says how they were made.

* ``qpv2024_sem_fullprecision.geojson``: the 20 QPV of SEM, a byte-for-byte copy of
  ``qpv-2024-sem-fullprecision/qpv2024_sem_244200770_fullprecision.geojson``.
* ``qpv2024_loire_hors_sem.geojson``: the 4 QPV of the Loire outside SEM, each as precise as
  available, said per feature (``precision``, ``precision_m``): QN04201M (Montbrison) verbatim from
  the full-precision extract; QN04217M, QN04218M, QN04219I (Roanne) verbatim from the simplified
  copy ``qpv-2024-simplified/qpv2024_loire_42.geojson`` (sha256 01796fb9…, see
  PROVENANCE-qpv-2024.md).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = "qpv-2024-sem-fullprecision"
PRECISE = {"precision": "géométrie exacte du fichier ANCT (pleine précision)", "precision_m": 1.0}
SIMPLE = {"precision": "copie simplifiée du fichier ANCT (bords décalés jusqu'à 11 m)",
          "precision_m": 11.0}


def main(shared: Path) -> None:
    """Write both layers next to this script."""
    shutil.copyfile(shared / FULL / "qpv2024_sem_244200770_fullprecision.geojson",
                    HERE / "qpv2024_sem_fullprecision.geojson")
    full = json.loads((shared / FULL / "qpv2024_loire_sem_plus_montbrison_fullprecision.geojson")
                      .read_text("utf-8"))
    simple = json.loads((shared / "qpv-2024-simplified" / "qpv2024_loire_42.geojson")
                        .read_text("utf-8"))
    feats = []
    for f in full["features"]:
        if f["properties"]["siren_epci"] != "244200770":
            f["properties"].pop("fid", None)
            f["properties"].update(PRECISE)
            feats.append(f)
    have = {f["properties"]["code_qp"] for f in feats}
    for f in simple["features"]:
        p = f["properties"]
        if p["siren_epci"] != "244200770" and p["code_qp"] not in have:
            p.update(SIMPLE)
            feats.append(f)
    feats.sort(key=lambda f: f["properties"]["code_qp"])
    out = {"type": "FeatureCollection", "name": "qpv2024_loire_hors_sem",
           "crs": full["crs"], "features": feats}
    text = "{\n" + ",\n".join(f'"{k}": {json.dumps(v, ensure_ascii=False)}'
                              for k, v in out.items() if k != "features")
    text += ',\n"features": [\n' + ",\n".join(json.dumps(f, ensure_ascii=False) for f in feats)
    text += "\n]\n}\n"
    (HERE / "qpv2024_loire_hors_sem.geojson").write_text(text, "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
