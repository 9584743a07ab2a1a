"""Provider-related config: drop_params, keys from conventional variables, required api_base,
unsafe api_base hosts, and the secrets handed to log redaction."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard_core.config import ConfigError, parse_config
from switchyard_core.logs import redact
from switchyard_core.providers_data import PROVIDERS


def config(*entries: dict[str, Any], **top: Any) -> dict[str, Any]:
    general = {"master_key": "sk-test-master-0123456789", **top.pop("general_settings", {})}
    return {"model_list": list(entries), "general_settings": general, **top}


def entry(model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": "group", "litellm_params": {"model": model, **params}}


# -- drop_params --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("global_value", "deployment_value", "expected"),
    [
        (None, None, False),
        (True, None, True),
        (None, True, True),
        (True, False, False),
        (False, True, True),
        ("true", None, True),
    ],
    ids=["default-off", "global-on", "deployment-on", "deployment-off-wins", "deployment-on-wins", "string-true"],
)
def test_drop_params_per_deployment_else_global(global_value: object, deployment_value: object, expected: bool) -> None:
    params = {} if deployment_value is None else {"drop_params": deployment_value}
    top = {} if global_value is None else {"litellm_settings": {"drop_params": global_value}}
    loaded = parse_config(config(entry("groq/llama-3.1-8b-instant", api_key="k", **params), **top))
    assert loaded.deployments[0].drop_params is expected


def test_global_drop_params_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(entry("openai/gpt-4o"), litellm_settings={"drop_params": "sometimes"}))
    assert caught.value.key == "litellm_settings.drop_params"


# -- provider keys from their conventional environment variables --------------------------------


@pytest.mark.parametrize(
    ("params", "environ", "expected"),
    [
        ({}, {"GROQ_API_KEY": "gsk-env"}, "gsk-env"),
        ({"api_key": "gsk-config"}, {"GROQ_API_KEY": "gsk-env"}, "gsk-config"),
        ({"api_key": "os.environ/MY_GROQ"}, {"MY_GROQ": "gsk-mine", "GROQ_API_KEY": "gsk-env"}, "gsk-mine"),
        ({"api_base": "https://api.groq.com/openai/v1"}, {"GROQ_API_KEY": "gsk-env"}, "gsk-env"),
        ({"api_base": "https://groq-proxy.example.com/v1"}, {"GROQ_API_KEY": "gsk-env"}, ""),
        ({}, {}, ""),
    ],
    ids=[
        "env-when-no-key",
        "config-key-wins",
        "os-environ-syntax",
        "env-with-groq-host",
        "never-to-another-host",
        "no-key-anywhere",
    ],
)
def test_hosted_provider_key_from_environment(params: dict[str, Any], environ: dict[str, str], expected: str) -> None:
    loaded = parse_config(config(entry("groq/llama-3.1-8b-instant", **params)), environ=environ)
    assert loaded.deployments[0].api_key == expected


@pytest.mark.parametrize(
    ("model", "environ", "expected"),
    [
        ("together_ai/m", {"TOGETHERAI_API_KEY": "tg-2"}, "tg-2"),
        ("together_ai/m", {"TOGETHER_API_KEY": "tg-1", "TOGETHERAI_API_KEY": "tg-2"}, "tg-1"),
        ("fireworks_ai/m", {"FIREWORKS_AI_API_KEY": "fw"}, "fw"),
        ("perplexity/sonar", {"PERPLEXITYAI_API_KEY": "pplx"}, "pplx"),
        ("xai/grok-3", {"XAI_API_KEY": "xai"}, "xai"),
        ("anthropic/claude-sonnet-4", {"ANTHROPIC_API_KEY": "ant"}, "ant"),
        ("openai/gpt-4o", {"OPENAI_API_KEY": "sk-openai"}, "sk-openai"),
        ("bedrock/amazon.nova-pro-v1:0", {"AWS_SECRET_ACCESS_KEY": "aws"}, ""),
    ],
    ids=[
        "together-litellm-name",
        "together-first-name-wins",
        "fireworks",
        "perplexity",
        "xai",
        "anthropic",
        "openai",
        "bedrock-uses-aws-chain",
    ],
)
def test_conventional_variable_names(model: str, environ: dict[str, str], expected: str) -> None:
    assert parse_config(config(entry(model)), environ=environ).deployments[0].api_key == expected


def test_self_hosted_key_follows_the_configured_server() -> None:
    loaded = parse_config(
        config(entry("hosted_vllm/meta-llama/Llama-3.1-8B", api_base="http://vllm.internal:8000/v1")),
        environ={"HOSTED_VLLM_API_KEY": "vllm-token"},
    )
    deployment = loaded.deployments[0]
    assert (deployment.provider, deployment.model) == ("hosted_vllm", "meta-llama/Llama-3.1-8B")
    assert deployment.api_key == "vllm-token"


@pytest.mark.parametrize(
    "model", ["hosted_vllm/llama", "openai_compatible/my-model", "azure/gpt-4o-eu"], ids=lambda m: m.split("/")[0]
)
def test_api_base_required_for_servers_without_a_default(model: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(entry(model)))
    assert caught.value.key == "model_list[0].litellm_params.api_base"
    assert "is required" in caught.value.reason


def test_presets_with_a_default_need_no_api_base() -> None:
    names = [name for name, info in PROVIDERS.items() if info.compatible is not None and info.api_base]
    loaded = parse_config(config(*(entry(f"{name}/some-model", api_key="k") for name in names)))
    assert [d.provider for d in loaded.deployments] == names
    assert all(d.api_base == "" for d in loaded.deployments), "the default is the transformer's, not the config's"


# -- api_base pointing at link-local / metadata addresses ----------------------------------------


@pytest.mark.parametrize(
    "api_base",
    [
        "http://169.254.169.254/latest",
        "http://169.254.10.1:8080/v1",
        "http://[fd00:ec2::254]/v1",
        "http://[fe80::1]/v1",
        "http://metadata.google.internal/computeMetadata/v1",
    ],
    ids=["aws-metadata", "link-local-v4", "aws-metadata-v6", "link-local-v6", "gcp-metadata"],
)
def test_preset_api_base_on_metadata_addresses_is_refused(api_base: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(entry("openai_compatible/m", api_base=api_base)))
    assert caught.value.key == "model_list[0].litellm_params.api_base"
    assert "allow_private_api_base" in caught.value.reason


def test_metadata_api_base_allowed_when_explicitly_allowed() -> None:
    loaded = parse_config(
        config(
            entry("openai_compatible/m", api_base="http://169.254.169.254/v1"),
            general_settings={"allow_private_api_base": True},
        )
    )
    assert loaded.deployments[0].api_base == "http://169.254.169.254/v1"


# -- secrets for log redaction ------------------------------------------------------------------


def test_secrets_include_every_secret_looking_param() -> None:
    loaded = parse_config(
        config(
            entry(
                "bedrock/anthropic.claude-sonnet-4-20250514-v1:0",
                aws_access_key_id="AKIAEXAMPLEID",
                aws_secret_access_key="aws-secret-0123456789",
                aws_session_token="aws-session-token-0123456789",
                aws_region_name="us-east-1",
                input_cost_per_token=0.000003,
            ),
            entry(
                "azure/gpt-4o",
                api_base="https://res.openai.azure.com",
                azure_ad_token="azure-ad-token-0123456789",
                extra_headers={"X-Team": "search", "Ocp-Apim-Subscription-Key": "apim-key-0123456789"},
            ),
            entry(
                "vertex_ai/gemini-2.5-pro",
                vertex_project="my-project",
                vertex_credentials={"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----abc"},
            ),
            entry("openai_compatible/m", api_base="https://llm.example.com/v1", db_password="hunter2-0123456789"),
            entry("groq/llama-3.1-8b-instant"),
        ),
        environ={"GROQ_API_KEY": "gsk-from-environment-0123456789"},
    )
    secrets = loaded.secrets()
    for secret in (
        "sk-test-master-0123456789",
        "aws-secret-0123456789",
        "aws-session-token-0123456789",
        "azure-ad-token-0123456789",
        "apim-key-0123456789",
        "-----BEGIN PRIVATE KEY-----abc",
        "hunter2-0123456789",
        "gsk-from-environment-0123456789",
    ):
        assert secret in secrets, secret
    for public in ("AKIAEXAMPLEID", "us-east-1", "search", "my-project", "https://res.openai.azure.com"):
        assert public not in secrets, public
    assert len(secrets) == len(set(secrets))
    line = "signing with aws-session-token-0123456789 for azure-ad-token-0123456789"
    redacted = redact(line, secrets)
    assert "aws-session-token" not in redacted and "azure-ad-token" not in redacted
