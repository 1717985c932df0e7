"""Only the documented names configure Atelier: a setting's bare field name (`BUILD_ID`, set by Jenkins in
every build; `PROVIDER`, `DATA_DIR`, ...) in the environment or `.env` does nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from models.settings import Settings

DOCUMENTED = ("ATELIER_", "LLM_", "OPENAI_", "IMAGE_", "EVAL_", "TEMPORAL_", "S3_", "OTEL_")


def names(field: FieldInfo) -> set[str]:
    alias = field.validation_alias
    choices = getattr(alias, "choices", [alias])
    return {str(choice).upper() for choice in choices}


BARE = {
    name.upper(): name for name, field in Settings.model_fields.items() if name.upper() not in names(field)
}  # e.g. BUILD_ID, PROVIDER, DATA_DIR, DEPLOYMENT, CALL_LOG, STORAGE, CODEC_KEY


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No Atelier variables from the developer's shell, nor a `.env` of theirs."""
    for key in list(os.environ):
        if key.upper().startswith(DOCUMENTED) or key.upper() in BARE:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_every_setting_has_a_documented_name():
    for name, field in Settings.model_fields.items():
        assert all(alias.startswith(DOCUMENTED) for alias in names(field)), f"{name} answers to {names(field)}"
    assert {"BUILD_ID", "PROVIDER", "DATA_DIR", "DEPLOYMENT", "CALL_LOG"} <= set(BARE)


def test_bare_field_names_in_the_environment_configure_nothing(clean_env):
    clean_env.setenv("BUILD_ID", "jenkins-42")
    clean_env.setenv("PROVIDER", "offline")
    clean_env.setenv("DATA_DIR", "elsewhere")
    clean_env.setenv("DEPLOYMENT", "ci")
    clean_env.setenv("CALL_LOG", "false")
    settings = Settings()
    assert settings.build_id is None and settings.deployment is None
    assert settings.provider == "auto" and settings.data_dir == Path(".atelier") and settings.call_log is True


@pytest.mark.parametrize("case", ["upper", "lower"])
def test_no_bare_name_is_read_from_the_environment_or_dotenv(clean_env, tmp_path, case):
    """Every bare name at once, with a value that either differs from the default or does not validate:
    read, it would change a setting or fail."""
    defaults = Settings().model_dump()
    spelled = {(key if case == "upper" else key.lower()): "bare-7" for key in BARE}
    for key, value in spelled.items():
        clean_env.setenv(key, value)
    assert Settings().model_dump() == defaults
    for key in spelled:
        clean_env.delenv(key)
    (tmp_path / ".env").write_text("".join(f"{key}={value}\n" for key, value in spelled.items()))
    assert Settings().model_dump() == defaults


def test_the_documented_names_still_configure(clean_env, tmp_path):
    clean_env.setenv("ATELIER_BUILD_ID", "v7")
    clean_env.setenv("ATELIER_PROVIDER", "offline")
    clean_env.setenv("ATELIER_CALL_LOG", "false")
    clean_env.setenv("OPENAI_API_KEY", "sk-documented")
    (tmp_path / ".env").write_text("ATELIER_DATA_DIR=from-dotenv\nATELIER_DEPLOYMENT=atelier\nLLM_MODEL=house-7b\n")
    settings = Settings()
    assert (settings.build_id, settings.provider, settings.call_log) == ("v7", "offline", False)
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == "sk-documented"
    assert (settings.data_dir, settings.deployment, settings.llm_model) == (Path("from-dotenv"), "atelier", "house-7b")
    # in code, by the documented names, as the codebase constructs it
    assert Settings(ATELIER_BUILD_ID="v8", _env_file=None).build_id == "v8"
