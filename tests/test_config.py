import pytest

from memctl.config import Settings, mask_url, normalise_url
from memctl.errors import ConfigError


@pytest.mark.parametrize("raw", ["postgresql://u:p@h/db", "postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db",
                                 "postgresql+psycopg://u:p@h/db"])
def test_normalise_url_uses_asyncpg(raw):
    url = normalise_url(raw)
    assert url.drivername == "postgresql+asyncpg"
    assert url.database == "db"


@pytest.mark.parametrize("raw", ["mysql://u:p@h/db", "not a url", ""])
def test_normalise_url_rejects_other_schemes_without_leaking(raw):
    with pytest.raises(ConfigError) as err:
        normalise_url(raw)
    assert "p@h" not in str(err.value)


def test_mask_url_hides_password():
    masked = mask_url("postgresql://alice:s3cr%40t@db.example/x")
    assert "s3cr" not in masked and "***" in masked


def test_settings_precedence(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@h/from_database_url")
    monkeypatch.setenv("MEMCTL_DATABASE_URL", "postgresql://a@h/from_memctl")
    assert Settings.resolve().database_url.database == "from_memctl"
    assert Settings.resolve("postgresql://a@h/from_option").database_url.database == "from_option"
    monkeypatch.delenv("MEMCTL_DATABASE_URL")
    assert Settings.resolve().database_url.database == "from_database_url"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("MEMCTL_HOME", "/tmp/somewhere")
    s = Settings.resolve()
    assert s.database_url is None and str(s.home) == "/tmp/somewhere"
