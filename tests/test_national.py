"""National files on Dask: the distributed path gives exactly the single-process output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from qpv_geo.batch import read_sites, validate_file, validate_sites  # noqa: E402
from qpv_geo.batch.columns import detect_columns  # noqa: E402
from qpv_geo.batch.national import read_parts, validate_national  # noqa: E402
from qpv_geo.exceptions import InputFileError  # noqa: E402
from qpv_geo.settings import Settings  # noqa: E402

N = 200_000


def _sites(n: int, seed: int = 1) -> pd.DataFrame:
    """Points across metropolitan France, a few unusable (empty or swapped coordinates)."""
    rng = np.random.default_rng(seed)
    lon = np.round(rng.uniform(-4.5, 8.0, n), 6).astype(str)
    lat = np.round(rng.uniform(42.5, 51.0, n), 6).astype(str)
    lat[::997] = ""
    lon[5::1009], lat[5::1009] = lat[5::1009], lon[5::1009]
    return pd.DataFrame({"nom": [f"site {i}" for i in range(n)], "lat": lat, "lon": lon})


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def france() -> Settings:
    return Settings.from_env(territoire="france")


def _both_paths(src, tmp_path, settings, client, blocksize):
    """The single-process output of *src* and the Dask path's parts put together, as text,
    with the Dask run's result."""
    validate_file(src, tmp_path / "single.csv", settings=settings, progress=False)
    res = validate_national(src, tmp_path / "out.csv", settings=settings, client=client,
                            blocksize=blocksize)
    single = pd.read_csv(tmp_path / "single.csv", sep=";", dtype=str, keep_default_na=False,
                         encoding="utf-8-sig")
    return single, read_parts(tmp_path / "out.csv"), res


def test_dask_csv_identical_to_single_process_200k(tmp_path, client, france) -> None:
    src = tmp_path / "big.csv"
    _sites(N).to_csv(src, sep=";", index=False)
    single, parts, res = _both_paths(src, tmp_path, france, client, "2MB")
    assert res.parties >= 3 and res.lignes_lues == res.lignes_ecrites == N
    pd.testing.assert_frame_equal(single, parts)
    assert parts["ligne"].astype(int).tolist() == list(range(2, N + 2))
    assert {"eligible", "hors_qpv", "non_geocode"} <= set(res.statuts)
    assert not list(tmp_path.glob(".out.csv.partiel-*"))  # renamed into place when complete


def test_dask_parquet_partitioned_identical_to_validate_sites(tmp_path, client, france) -> None:
    n = 30_000
    sites = _sites(n, seed=2)
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):  # a partitioned input: three files
        sites.iloc[k * n // 3:(k + 1) * n // 3].to_parquet(folder / f"p{k}.parquet")
    res = validate_national(folder, tmp_path / "out.parquet", settings=france, client=client)
    got = read_parts(tmp_path / "out.parquet")
    frame = sites.copy()
    frame.index = pd.Index(np.arange(2, n + 2), name="ligne")
    want = validate_sites(frame, detect_columns(list(sites.columns)), settings=france).frame
    assert res.lignes_ecrites == n and len(got) == n
    assert got["ligne"].tolist() == want["ligne"].tolist()
    for col in ("status", "code_qp", "lib_qp", "motifs", "marge_m", "distance_bord_m"):
        a, b = got[col].to_numpy(), want[col].to_numpy()
        same = (a == b) | (pd.isna(a) & pd.isna(b))
        assert same.all(), col


def test_dask_sem_default_matches_too(tmp_path, client) -> None:
    src = tmp_path / "sem.csv"
    rng = np.random.default_rng(3)
    pd.DataFrame({"lat": np.round(rng.uniform(45.35, 45.55, 5000), 6).astype(str),
                  "lon": np.round(rng.uniform(4.25, 4.55, 5000), 6).astype(str)}
                 ).to_csv(src, sep=";", index=False)
    settings = Settings.from_env()
    single, parts, _res = _both_paths(src, tmp_path, settings, client, "40kB")
    pd.testing.assert_frame_equal(single, parts)
    assert len(read_sites(src)[0]) == 5000


def test_dask_refuses_bad_output_and_existing(tmp_path, client, france) -> None:
    src = tmp_path / "s.csv"
    _sites(10).to_csv(src, sep=";", index=False)
    with pytest.raises(InputFileError, match="dossier de parties"):
        validate_national(src, tmp_path / "out.xlsx", settings=france, client=client)
    (tmp_path / "deja.csv").mkdir()
    with pytest.raises(InputFileError, match="existe déjà"):
        validate_national(src, tmp_path / "deja.csv", settings=france, client=client)


def test_cli_moteur_dask_errors_are_french(tmp_path) -> None:
    from typer.testing import CliRunner

    from qpv_geo.cli import app

    src = tmp_path / "s.csv"
    _sites(10).to_csv(src, sep=";", index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.xlsx"), "--moteur",
                              "dask", "--territoire", "france"])
    assert res.exit_code == 2 and "dossier de parties" in res.output
    res = runner.invoke(app, ["batch", str(src), "-o", str(tmp_path / "r.csv"), "--moteur",
                              "spark"])
    assert res.exit_code == 2 and "local ou dask" in res.output
    assert "Traceback" not in res.output


def test_dask_numbers_lines_as_single_process_with_blank_lines(tmp_path, client,
                                                               france) -> None:
    """Blank lines (empty, spaces, separators only) at the start, in the middle — some at
    partition boundaries — and at the end, and a title above the header: skipped by both
    paths and counted in ``ligne``."""
    n = 3000
    lines = _sites(n, seed=4).to_csv(sep=";", index=False).splitlines()
    rng = np.random.default_rng(5)
    blanks = ["", "   ", ";;", " ; ;\t"]
    body = []
    for k, line in enumerate(lines[1:]):
        body.append(line)
        if rng.random() < 0.05 or k in (700, 701):
            body.extend(rng.choice(blanks, size=int(rng.integers(1, 4))).tolist())
    text = "\n".join(["", "Sites 2024 (export);;", " ", lines[0], *body, "", "  ", ""]) + "\n"
    src = tmp_path / "vides.csv"
    src.write_text(text, encoding="utf-8")
    single, parts, res = _both_paths(src, tmp_path, france, client, "16kB")
    assert res.parties >= 5 and res.lignes_lues == res.lignes_ecrites == n == len(parts)
    pd.testing.assert_frame_equal(single, parts)
    ligne = parts["ligne"].astype(int)
    assert ligne.iloc[0] == 5 and ligne.iloc[-1] > n + 100  # a title above, header line 4
    import json

    summary = json.loads((tmp_path / "single-synthese.json").read_text(encoding="utf-8"))
    assert res.synthese["lignes_ignorees_total"] == summary["lignes_ignorees_total"] > 100
    # Parquet output numbers the same rows the same way
    validate_national(src, tmp_path / "out.parquet", settings=france, client=client,
                      blocksize="16kB")
    assert read_parts(tmp_path / "out.parquet")["ligne"].astype(int).tolist() == ligne.tolist()


@pytest.mark.parametrize("at", [7, 21], ids=["one-row", "last-row"])
def test_dask_flags_a_row_swallowed_by_a_stray_quote(at, tmp_path, client) -> None:
    """Issue 21.3 on the Dask path: one swallowed row is flagged on its row and in the
    summary; a quote never closed on the last row is a French error, not a ParserError."""
    from tests.test_batch_sheets import _quoted_csv

    src = _quoted_csv(tmp_path / "appel.csv", at=at)
    if at == 21:
        with pytest.raises(InputFileError, match="guillemet non fermé probable ligne 21"):
            validate_national(src, tmp_path / "out.csv", client=client)
        return
    res = validate_national(src, tmp_path / "out.csv", client=client)
    parts = read_parts(tmp_path / "out.csv").set_index("ligne")
    assert "guillemet non fermé probable" in parts.loc[str(at), "motifs"]
    assert "lignes 7" in res.synthese["avertissements_lecture"][0]


def test_dask_removes_nul_bytes_and_says_so(tmp_path, client) -> None:
    """Issue 21 (Low): the Dask path copied NUL bytes raw into its output."""
    src = tmp_path / "nul.csv"
    src.write_bytes(b"Porteur;Latitude;Longitude\nAsso\x00 A;45,4335;4,3790\n"
                    b"Asso B;45,4335;4,3790\n")
    validate_national(src, tmp_path / "out.csv", client=client)
    parts = read_parts(tmp_path / "out.csv")
    assert "\x00" not in (tmp_path / "out.csv" / "partie-00000.csv").read_text(encoding="utf-8")
    assert parts.loc[0, "Porteur"] == "Asso A" and "NUL supprimés" in parts.loc[0, "motifs"]
    assert "NUL" not in parts.loc[1, "motifs"]


def test_dask_numbers_rows_after_a_quoted_line_break_as_single_process(tmp_path, client,
                                                                        france) -> None:
    """A quoted cell holding a line break in the first block: the line count assumed it two
    records; the blocks after it are numbered again from the records parsed (issue 24)."""
    sites = _sites(4000, seed=6)
    sites.loc[10, "nom"] = "site\nsur deux lignes"
    sites.loc[2500, "nom"] = "autre\r\nsite ; coupé"
    src = tmp_path / "coupures.csv"
    sites.to_csv(src, sep=";", index=False)
    single, parts, res = _both_paths(src, tmp_path, france, client, "16kB")
    assert res.parties >= 5 and res.lignes_ecrites == len(sites)
    # (the single-process reader also says where a cell holds a line break)
    same = [c for c in parts.columns if c not in ("motifs", "problème de lecture")]
    pd.testing.assert_frame_equal(single[same], parts[same])


def test_dask_parses_each_block_once(tmp_path, client, france, monkeypatch) -> None:
    """Issue 24: the Dask path parsed every block twice (once to count its rows)."""
    import qpv_geo.batch.national as national

    calls: list[int] = []
    load = national._load

    def counting(block, *args):
        calls.append(block.start)
        return load(block, *args)

    monkeypatch.setattr(national, "_load", counting)
    src = tmp_path / "s.csv"
    _sites(3000).to_csv(src, sep=";", index=False)
    res = validate_national(src, tmp_path / "out.csv", settings=france, client=client,
                            blocksize="16kB")
    assert res.parties >= 5 and sorted(calls) == sorted(set(calls)) and len(calls) == res.parties
