"""The SQL Server ``DATABASE_URL`` forms docs/sqlserver.md documents, as the settings
parse them and as mssql-django turns them into a driver connection string (offline)."""

from __future__ import annotations

import re

from mssql.base import DatabaseWrapper

from portal.settings.base import database_from_env

from .offline import OfflineSqlServer

PYTHON_DRIVER_URL = (
    "mssql://portal:s3cr%40t%3Bx@db.example.com:1433/portal"
    "?python_driver=mssql_python&extra_params=Encrypt%3Dyes"
)
PYODBC_URL = (
    "mssql://portal:pw@db.example.com:1433/portal"
    "?python_driver=pyodbc&driver=ODBC+Driver+18+for+SQL+Server"
)


def connection_string(url: str) -> tuple[dict, dict[str, str]]:
    settings = database_from_env(url)
    wrapper = OfflineSqlServer({**settings, "TIME_ZONE": None}, "url_check", version=2022)
    driver = settings["OPTIONS"].get("driver", "ODBC Driver 18 for SQL Server")
    text = wrapper._build_connection_string(settings, driver)
    return settings, parse_connection_string(text)


def parse_connection_string(text: str) -> dict[str, str]:
    """ODBC ``KEY=value;`` pairs; a braced value may hold ';' (and '}}' for '}')."""
    pairs = re.findall(r"([^=;]+)=(\{(?:[^}]|\}\})*\}|[^;]*)", text)
    return {key.strip(): value for key, value in pairs}


def test_documented_url_selects_mssql_python_and_pools_connections():
    settings, parts = connection_string(PYTHON_DRIVER_URL)

    assert settings["ENGINE"] == "mssql"
    assert settings["OPTIONS"]["python_driver"] == "mssql_python"
    assert DatabaseWrapper._uses_mssql_python(settings)
    assert (settings["CONN_MAX_AGE"], settings["CONN_HEALTH_CHECKS"]) == (60, True)
    # The bundled driver takes no DRIVER keyword; the port goes after a comma.
    assert parts["SERVER"] == "db.example.com,1433"
    assert "DRIVER" not in parts
    assert parts["DATABASE"] == "portal"
    assert parts["UID"] == "portal"
    assert parts["Encrypt"] == "yes"  # extra_params, percent-decoded, appended verbatim


def test_percent_encoded_password_is_decoded_and_braced():
    settings, _ = connection_string(PYTHON_DRIVER_URL)
    _, parts = connection_string(PYTHON_DRIVER_URL)
    assert settings["PASSWORD"] == "s3cr@t;x"
    assert parts["PWD"] == "{s3cr@t;x}"  # a ';' in a password cannot end the keyword


def test_url_without_python_driver_still_defaults_to_mssql_python():
    settings = database_from_env("mssql://portal:pw@db.example.com/portal")
    assert settings["OPTIONS"]["python_driver"] == "mssql_python"


def test_pyodbc_needs_an_explicit_python_driver_value():
    settings, parts = connection_string(PYODBC_URL)
    assert not DatabaseWrapper._uses_mssql_python(settings)
    assert parts["DRIVER"] == "ODBC Driver 18 for SQL Server"
    assert parts["SERVER"] == "db.example.com,1433"


def test_driver_alone_does_not_select_pyodbc():
    """``?driver=…`` without ``python_driver=pyodbc`` keeps mssql-python (the settings
    default it), and mssql-python ignores ``driver``: docs/sqlserver.md warns about it."""
    settings = database_from_env(PYODBC_URL.replace("python_driver=pyodbc&", ""))
    assert DatabaseWrapper._uses_mssql_python(settings)


def test_conn_max_age_in_the_url_overrides_the_default():
    settings = database_from_env(PYTHON_DRIVER_URL + "&conn_max_age=0")
    assert settings["CONN_MAX_AGE"] == 0
    assert "conn_max_age" not in settings["OPTIONS"]
