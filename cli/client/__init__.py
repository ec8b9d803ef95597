"""The `optio` client commands: talk to a running Optio over its HTTP API (docs/cli.md)."""
