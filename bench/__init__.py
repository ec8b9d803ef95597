"""Benchmark of the repo-task lifecycle, run against a real `optio up` (`make bench`).

Modules: `system` starts and stops `optio up` and watches its processes, `postgres`
makes scratch databases, `repo` makes the bare git repository tasks work on,
`scenarios` drives tasks through the HTTP API and measures, `report` prints the table.
"""
