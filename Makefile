# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The real agent CLIs the tests drive against a scripted model endpoint (docs/agents.md).
AGENTS_DIR := .optio-agents
CLAUDE_CODE_VERSION ?= 2.1.197
CODEX_VERSION ?= 0.171.0
GEMINI_CLI_VERSION ?= 0.61.0
OPENCODE_VERSION ?= 1.18.33
COPILOT_VERSION ?= 1.0.102
AGENT_PACKAGES := @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) @openai/codex@$(CODEX_VERSION) \
	@google/gemini-cli@$(GEMINI_CLI_VERSION) opencode-ai@$(OPENCODE_VERSION) @github/copilot@$(COPILOT_VERSION)
AGENTS_STAMP := $(AGENTS_DIR)/.installed-$(CLAUDE_CODE_VERSION)-$(CODEX_VERSION)-$(GEMINI_CLI_VERSION)-$(OPENCODE_VERSION)-$(COPILOT_VERSION)

# Byte-compiled ahead, as a wheel install would: the workflow sandbox re-imports workflow
# modules for every workflow run, and without .pyc files (PYTHONDONTWRITEBYTECODE) each
# of those imports compiles the source again.
PACKAGES := activities api cli core integrations runner schemas store temporal worker workflows

.PHONY: run test lint typecheck pytest bench install clean agents compile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Without npm the real-agent tests skip themselves; everything else still runs.
$(AGENTS_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(AGENTS_DIR) --no-audit --no-fund --loglevel=error --save-exact \
			$(AGENT_PACKAGES) && touch $@; \
	else echo "npm not found: the real-agent tests will be skipped"; fi

agents: $(AGENTS_STAMP)

compile: $(STAMP)
	@$(BIN)/python -m compileall -q $(PACKAGES)

run: compile
	$(BIN)/optio up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP) agents
	$(BIN)/pytest

test: lint typecheck pytest

bench: compile
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .optio-data .pytest_cache .mypy_cache .ruff_cache
