from core.graph import dependencies_verdict, find_cycle


def test_find_cycle_names_the_path() -> None:
    edges = {"b": {"a"}}
    assert find_cycle(edges, start="a", new_targets={"b"}) == ["a", "b", "a"]
    assert find_cycle(edges, start="c", new_targets={"b"}) == []
    assert find_cycle({}, start="a", new_targets={"a"}) == ["a", "a"]
    long = {"b": {"c"}, "c": {"d"}}
    assert find_cycle(long, start="d", new_targets={"b"}) == ["d", "b", "c", "d"]


def test_diamond_is_not_a_cycle() -> None:
    edges = {"b": {"a"}, "c": {"a"}}
    assert find_cycle(edges, start="d", new_targets={"b", "c"}) == []


def test_verdict() -> None:
    assert dependencies_verdict([]) == "met"
    assert dependencies_verdict(["completed", "running"]) == "waiting"
    assert dependencies_verdict(["completed", "pr_opened"]) == "waiting"
    assert dependencies_verdict(["completed", "completed"]) == "met"
    assert dependencies_verdict(["running", "cancelled"]) == "failed"
