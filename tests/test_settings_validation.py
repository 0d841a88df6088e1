"""Every numeric setting is validated (finite, in range) with a French error; the CLI exits 2."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from qpv_geo.cli import app
from qpv_geo.exceptions import QpvGeoError, SettingsError
from qpv_geo.settings import Settings

runner = CliRunner()


@pytest.mark.parametrize("field,value", [
    ("marge_m", math.nan), ("marge_m", -3.0), ("marge_m", math.inf),
    ("rayon_recherche_m", math.nan), ("rayon_recherche_m", 0.0),
    ("tolerance_territoire_m", -1.0), ("score_min", 1.5), ("ban_rate_limit", 0.0),
    ("max_upload_mb", math.nan), ("max_batch_items", 0), ("timeout_s", -1.0),
    ("max_cellules", 0), ("max_ratio_compression", math.nan),
])
def test_bad_numeric_setting_is_refused_in_french(field: str, value: float) -> None:
    with pytest.raises(SettingsError) as err:
        Settings().with_(**{field: value})
    assert isinstance(err.value, QpvGeoError)
    assert "hors des valeurs admises" in str(err.value)
    assert "QPV_GEO_" in (err.value.hint or "")


@pytest.mark.parametrize("name,raw", [("QPV_GEO_MARGE_M", "nan"),
                                      ("QPV_GEO_RAYON_RECHERCHE_M", "NaN"),
                                      ("QPV_GEO_MARGE_M", "beaucoup"),
                                      ("QPV_GEO_MAX_BATCH_ITEMS", "2,5")])
def test_bad_environment_variable_is_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name.removeprefix("QPV_GEO_").lower()
                       + "|" + name):
        Settings.from_env({name: raw})


def test_decimal_comma_in_environment_is_accepted() -> None:
    assert Settings.from_env({"QPV_GEO_MARGE_M": "12,5"}).marge_m == 12.5


def test_unknown_geocoder_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="Géocodeur inconnu"):
        Settings.from_env({"QPV_GEO_GEOCODER": "foo"})


@pytest.mark.parametrize("args", [["--marge", "nan"], ["--marge", "-3"]])
def test_cli_bad_margin_exits_2_in_french(tmp_path, args: list[str]) -> None:
    res = runner.invoke(app, ["check", "--lat", "45.4335", "--lon", "4.379", *args])
    assert res.exit_code == 2, res.output
    assert "marge" in res.output and "Traceback" not in res.output


def test_cli_nan_margin_env_exits_2(monkeypatch) -> None:
    monkeypatch.setenv("QPV_GEO_MARGE_M", "nan")
    res = runner.invoke(app, ["check", "--lat", "45.4335", "--lon", "4.379"])
    assert res.exit_code == 2, res.output
    assert "QPV_GEO_MARGE_M" in res.output
