import pytest

from core.templating import TemplateError, render, validate, variables_used


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("Hi {{NAME}}!", {"NAME": "Ada"}, "Hi Ada!"),
        ("{{ NAME }}", {"NAME": "spaces"}, "spaces"),
        ("[{{MISSING}}]", {}, "[]"),
        ("{{#if AUTO_MERGE}}merge{{else}}wait{{/if}}", {"AUTO_MERGE": True}, "merge"),
        ("{{#if AUTO_MERGE}}merge{{else}}wait{{/if}}", {"AUTO_MERGE": False}, "wait"),
        ("{{#if AUTO_MERGE}}merge{{else}}wait{{/if}}", {"AUTO_MERGE": "false"}, "wait"),
        ("{{#if A}}a{{#if B}}b{{/if}}{{/if}}", {"A": 1, "B": 0}, "a"),
        ("{{#if A}}a{{#if B}}b{{else}}c{{/if}}{{else}}d{{/if}}", {"A": 1, "B": 0}, "ac"),
        ("{{#if ISSUE_NUMBER}}Fixes #{{ISSUE_NUMBER}}{{/if}}", {"ISSUE_NUMBER": 7}, "Fixes #7"),
        ("{{params.env}}", {"params": {"env": "prod"}}, "prod"),
        ("flag={{FLAG}}", {"FLAG": True}, "flag=true"),
    ],
)
def test_render(template: str, variables: dict[str, object], expected: str) -> None:
    assert render(template, variables) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{#if A}}open", "Unclosed {{#if A}} at character 0"),
        ("x{{/if}}", "{{/if}} without an open {{#if}}"),
        ("{{else}}", "{{else}} without an open {{#if}}"),
        ("{{#if A}}1{{else}}2{{else}}3{{/if}}", "{{else}} without an open {{#if}}"),
    ],
)
def test_unbalanced_blocks_are_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate(template)


def test_variables_used() -> None:
    assert variables_used("{{A}} {{#if B}}{{C}}{{/if}}") == {"A", "B", "C"}
