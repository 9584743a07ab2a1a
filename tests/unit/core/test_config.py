"""LiteLLM-format config: accepted shapes, environment values, and errors naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard_core.config import ConfigError, load_config, parse_config

BASE = {
    "model_list": [
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "os.environ/TEST_OPENAI_KEY",
                "input_cost_per_token": 2.5e-6,
                "rpm": 100,
            },
        },
        {"model_name": "gpt-4o", "litellm_params": {"model": "azure/gpt-4o-eu", "api_base": "https://eu.example.com"}},
    ],
    "general_settings": {"master_key": "sk-master-1234567890"},
}


def test_reads_litellm_config_with_environment_values(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(BASE))
    config = load_config(path, environ={"TEST_OPENAI_KEY": "sk-upstream-abcdef"})
    first, second = config.deployments
    assert (first.provider, first.model, first.api_key, first.rpm) == ("openai", "gpt-4o", "sk-upstream-abcdef", 100)
    assert first.input_cost_per_token == 2.5e-6
    assert (second.provider, second.api_base) == ("azure", "https://eu.example.com")
    assert first.id != second.id
    assert list(config.model_groups()) == ["gpt-4o"]
    assert config.general.master_key == "sk-master-1234567890"
    assert "sk-upstream-abcdef" not in repr(first)


def keyed(raw: dict[str, object]) -> dict[str, object]:
    """``raw`` with a master key, which every valid config needs."""
    general = {"master_key": "sk-test-master", **raw.get("general_settings", {})}  # type: ignore[dict-item]
    return {**raw, "general_settings": general}


def test_model_without_prefix_is_openai() -> None:
    config = parse_config(keyed({"model_list": [{"model_name": "m", "litellm_params": {"model": "gpt-4o-mini"}}]}))
    assert (config.deployments[0].provider, config.deployments[0].model) == ("openai", "gpt-4o-mini")


def test_unknown_keys_are_reported_not_dropped() -> None:
    raw = {**BASE, "model_list": [], "general_settings": {"master_key": "k", "alerting": ["slack"]}, "extra": 1}
    config = parse_config(raw)
    assert set(config.unknown_keys) == {"extra", "general_settings.alerting"}


@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        ({"model_list": {"a": 1}}, "model_list", "must be a list"),
        ({"model_list": [{"litellm_params": {"model": "x"}}]}, "model_list[0].model_name", "is required"),
        (
            {"model_list": [{"model_name": "m", "litellm_params": {}}]},
            "model_list[0].litellm_params.model",
            "is required",
        ),
        (
            {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/x", "rpm": "lots"}}]},
            "model_list[0].litellm_params.rpm",
            "must be a number",
        ),
        (
            {
                "model_list": [
                    {"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "os.environ/NOPE"}}
                ]
            },
            "model_list[0].litellm_params.api_key",
            "NOPE is not set",
        ),
        (
            {
                "model_list": [
                    {"model_name": "m", "litellm_params": {"model": "x", "api_base": "http://169.254.169.254/"}}
                ]
            },
            "model_list[0].litellm_params.api_base",
            "metadata",
        ),
        (
            {"model_list": [{"model_name": "m", "litellm_params": {"model": "x", "api_base": "ftp://h"}}]},
            "model_list[0].litellm_params.api_base",
            "http(s) URL",
        ),
        ({"general_settings": {"request_timeout": 0}}, "general_settings.request_timeout", "at least"),
        ([1, 2], "<root>", "must be a mapping"),
        ({"general_settings": {"master_key": ""}}, "general_settings.master_key", "is required"),
    ],
    ids=[
        "list-type",
        "model-name",
        "model",
        "rpm-type",
        "missing-env",
        "metadata-ip",
        "scheme",
        "timeout",
        "root",
        "no-master-key",
    ],
)
def test_invalid_config_names_file_key_and_reason(raw: object, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(keyed(raw) if isinstance(raw, dict) else raw, "conf.yaml", environ={})
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"conf.yaml: {key}: ")


def test_private_api_base_allowed_when_operator_says_so() -> None:
    raw = {
        "model_list": [{"model_name": "m", "litellm_params": {"model": "x", "api_base": "http://169.254.169.254/"}}],
        "general_settings": {"allow_private_api_base": True},
    }
    assert parse_config(keyed(raw)).deployments[0].api_base == "http://169.254.169.254"


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
