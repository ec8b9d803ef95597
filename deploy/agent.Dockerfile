# The agent image: the runner plus the agent CLIs, pinned to the versions of the
# Makefile (tests/deploy checks they agree), run as a non-root user. Kubernetes run pods
# use it (OPTIO_LAUNCHER=kubernetes).
# Build from the repository root:  docker build -f deploy/agent.Dockerfile -t optio-agent:dev .
# Node 20 for the agent CLIs (Gemini CLI needs it; Debian 12 ships 18), and Debian 12's
# Python 3.11 for the runner, in both stages so the venv's interpreter is the same one.
FROM node:20.19-bookworm-slim AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.* python3-venv=3.11.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY activities activities
COPY api api
COPY cli cli
COPY core core
COPY integrations integrations
COPY runner runner
COPY schemas schemas
COPY store store
COPY temporal temporal
COPY worker worker
COPY workflows workflows
RUN python3 -m venv /opt/optio \
    && /opt/optio/bin/pip install --no-cache-dir --upgrade pip==25.3 \
    && /opt/optio/bin/pip install --no-cache-dir --compile /src

FROM node:20.19-bookworm-slim

ARG CLAUDE_CODE_VERSION=2.1.197
ARG CODEX_VERSION=0.171.0
ARG GEMINI_CLI_VERSION=0.61.0
ARG OPENCODE_VERSION=1.18.33
ARG COPILOT_VERSION=1.0.102

# git for the worktree; ripgrep, which the agents search with.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.* git=1:2.39.* \
        ripgrep=13.* ca-certificates=2023* tini=0.19.* \
    && rm -rf /var/lib/apt/lists/*

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN npm install --prefix /opt/agents --no-audit --no-fund --loglevel=error --save-exact \
        "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" \
        "@openai/codex@${CODEX_VERSION}" \
        "@google/gemini-cli@${GEMINI_CLI_VERSION}" \
        "opencode-ai@${OPENCODE_VERSION}" \
        "@github/copilot@${COPILOT_VERSION}" \
    && npm cache clean --force

RUN groupadd --gid 10002 agent \
    && useradd --uid 10002 --gid agent --home-dir /home/agent --create-home agent

COPY --from=build /opt/optio /opt/optio
ENV PATH=/opt/agents/node_modules/.bin:/opt/optio/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OPTIO_AGENTS_BIN_DIR=/opt/agents/node_modules/.bin \
    HOME=/home/agent

USER 10002:10002
WORKDIR /home/agent
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/optio/bin/python", "-m", "runner"]
