"""Which settings become which environment variables of which agent (docs/agents.md).

Only the agent process of a run receives them (RunSpec.secret_env), never the runner's
own log or the worker's environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from core.settings import Settings


@dataclass(frozen=True)
class AgentAccess:
    secret_env: dict[str, str]
    base_url: str | None


def _put(env: dict[str, str], name: str, value: SecretStr | None) -> None:
    if value is not None:
        env[name] = value.get_secret_value()


def agent_access(agent_type: str, settings: Settings, model: str | None = None) -> AgentAccess:
    env: dict[str, str] = {}
    base_url: str | None = None
    if agent_type == "claude-code":
        _put(env, "ANTHROPIC_API_KEY", settings.anthropic_api_key)
        _put(env, "CLAUDE_CODE_OAUTH_TOKEN", settings.claude_code_oauth_token)
        base_url = settings.anthropic_base_url
    elif agent_type == "codex":
        _put(env, "OPENAI_API_KEY", settings.openai_api_key)
        _put(env, "CODEX_API_KEY", settings.openai_api_key)
        base_url = settings.openai_base_url
    elif agent_type == "gemini":
        _put(env, "GEMINI_API_KEY", settings.gemini_api_key)
        base_url = settings.gemini_base_url
    elif agent_type == "opencode":
        _put(env, "ANTHROPIC_API_KEY", settings.anthropic_api_key)
        _put(env, "OPENAI_API_KEY", settings.openai_api_key)
        # The model names its provider ("anthropic/claude-sonnet-4-5"), whose base URL
        # the adapter writes into opencode.json.
        provider = model.split("/", 1)[0] if model and "/" in model else None
        if provider == "anthropic":
            base_url = settings.anthropic_base_url
        elif provider == "openai":
            base_url = settings.openai_base_url
    elif agent_type == "copilot":
        _put(env, "COPILOT_GITHUB_TOKEN", settings.copilot_github_token)
        if settings.copilot_provider_base_url:
            _put(env, "COPILOT_PROVIDER_API_KEY", settings.copilot_provider_api_key)
            env["COPILOT_PROVIDER_TYPE"] = settings.copilot_provider_type
        base_url = settings.copilot_provider_base_url
    return AgentAccess(secret_env=env, base_url=base_url)


# Secret names (inventory §3.11) each agent reads, and the variables each one feeds.
SECRET_ENV: dict[str, dict[str, tuple[str, ...]]] = {
    "claude-code": {
        "ANTHROPIC_API_KEY": ("ANTHROPIC_API_KEY",),
        "CLAUDE_CODE_OAUTH_TOKEN": ("CLAUDE_CODE_OAUTH_TOKEN",),
    },
    "codex": {"OPENAI_API_KEY": ("OPENAI_API_KEY", "CODEX_API_KEY")},
    "gemini": {"GEMINI_API_KEY": ("GEMINI_API_KEY",)},
    "opencode": {
        "ANTHROPIC_API_KEY": ("ANTHROPIC_API_KEY",),
        "OPENAI_API_KEY": ("OPENAI_API_KEY",),
    },
    "copilot": {"COPILOT_GITHUB_TOKEN": ("COPILOT_GITHUB_TOKEN",)},
}


def with_stored_secrets(
    access: AgentAccess, stored: dict[str, str], agent_type: str
) -> AgentAccess:
    """Secrets from the encrypted store win over settings, variable by variable."""
    env = dict(access.secret_env)
    for name, variables in SECRET_ENV.get(agent_type, {}).items():
        if name in stored:
            for variable in variables:
                env[variable] = stored[name]
    return AgentAccess(secret_env=env, base_url=access.base_url)
