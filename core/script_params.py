"""Template parameters of a `script` prompt are data: environment variables, never code.

A `script` agent runs its prompt with bash, so pasting a parameter's text into it would
let whoever supplies the parameter (a webhook caller, a schedule, a ticket) write part of
the script. Instead a preamble exports one variable per parameter, its value quoted as
one shell word at the top of the script (the one place where quoting cannot be undone by
the template's own quotes), and each `{{param}}` becomes a reference to that variable.

The reference is written for the quoting context it lands in, so the script reads as
its author meant: `"${V}"` where the text is unquoted, `${V}` inside double quotes or an
expanding heredoc, `'"${V}"'` inside single quotes. Whatever the context, the output
never holds the value itself: a context guessed wrong can only cost word splitting or
literal text, never a command. Real agents get parameters as text in their prompt.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping

from core import templating
from core.prompt_chain import render_user_template

PARAM_ENV_PREFIX = "OPTIO_PARAM_"
SCRIPT_AGENT = "script"

# Placeholders while rendering: NUL never occurs in a script bash would run.
_MARKER = re.compile(r"\x00(\d+)\x00")
_HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)([A-Za-z_][\w-]*)\1")


def param_variable(name: str) -> str:
    """The environment variable a parameter reaches a script as (`a.b` -> OPTIO_PARAM_a_b)."""
    return PARAM_ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _reference(variable: str, context: str) -> str:
    if context in ("double", "heredoc"):
        return f"${{{variable}}}"
    if context == "single":
        return f"'\"${{{variable}}}\"'"
    return f'"${{{variable}}}"'


def _place_references(text: str, variables: list[str]) -> str:
    """Replace each marker by a reference fit for the shell quoting context it is in."""
    out: list[str] = []
    stack = ["top"]  # top | subshell | backtick | double | single
    pending: list[str] = []  # heredoc delimiters whose bodies start on the next line

    def refs(chunk: str, context: str) -> str:
        return _MARKER.sub(lambda m: _reference(variables[int(m.group(1))], context), chunk)

    i, n = 0, len(text)
    while i < n:
        state = stack[-1]
        marker = _MARKER.match(text, i)
        if marker is not None:
            out.append(_reference(variables[int(marker.group(1))], state))
            i = marker.end()
            continue
        ch = text[i]
        if state == "single":
            if ch == "'":
                stack.pop()
        elif ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        elif state == "double":
            if ch == '"':
                stack.pop()
            elif text.startswith("$(", i):
                stack.append("subshell")
            elif ch == "`":
                stack.append("backtick")
        else:  # top, subshell, backtick: unquoted shell text
            heredoc = _HEREDOC.match(text, i)
            comment = ch == "#" and (i == 0 or text[i - 1] in " \t\n;&|(")
            if heredoc is not None or comment:
                # A heredoc operator, or a comment (whose apostrophes quote nothing).
                end = heredoc.end() if heredoc is not None else _line_end(text, i)
                if heredoc is not None:
                    pending.append(heredoc.group(2))
                out.append(refs(text[i:end], state))
                i = end
                continue
            if ch == "'":
                stack.append("single")
            elif ch == '"':
                stack.append("double")
            elif text.startswith("$(", i):
                stack.append("subshell")
            elif ch == "`":
                if state == "backtick":
                    stack.pop()
                else:
                    stack.append("backtick")
            elif ch == ")" and state == "subshell":
                stack.pop()
            elif ch == "\n" and pending:
                out.append(ch)
                i = _copy_heredocs(text, i + 1, pending, refs, out)
                pending.clear()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _copy_heredocs(
    text: str, i: int, delimiters: list[str], refs: Callable[[str, str], str], out: list[str]
) -> int:
    """Copy heredoc bodies (and their delimiter lines) from `i`; where the text resumes."""
    for delimiter in delimiters:
        while i < len(text):
            end = min(_line_end(text, i) + 1, len(text))
            line = text[i:end]
            out.append(refs(line, "heredoc"))
            i = end
            if line.rstrip("\n").lstrip("\t") == delimiter:
                break
    return i


def render_script(
    template: str,
    params: Mapping[str, object],
    *,
    keep_unknown: bool = True,
    code: frozenset[str] = frozenset(),
) -> str:
    """Render a template as a bash script whose parameters cannot change what it runs.

    `keep_unknown` follows user templates (an unknown `{{name}}` stays as written);
    False follows Optio's own templates, where it renders empty. Names in `code` are
    pasted as they are: commands the same people who write the script wrote.
    """
    values: dict[str, str] = {}  # variable -> text of the value
    variables: dict[str, str] = {}  # parameter name -> variable
    order: list[str] = []  # marker number -> variable

    def substitute(name: str, text: str) -> str:
        if name in code:
            return text.replace("\x00", "")
        variable = variables.get(name)
        if variable is None:
            variable = candidate = param_variable(name)
            suffix = 1
            while variable in values:  # `a.b` and `a_b` both used: keep them apart
                suffix += 1
                variable = f"{candidate}_{suffix}"
            variables[name], values[variable] = variable, text
        order.append(variable)
        return f"\x00{len(order) - 1}\x00"

    # The template's own text never holds NUL (bash cannot run it), so markers are ours.
    template = template.replace("\x00", "")
    body = (
        render_user_template(template, params, substitute=substitute)
        if keep_unknown
        else templating.render(template, params, substitute=substitute)
    )
    if not values:
        return body
    body = _place_references(body, order)
    preamble = "".join(f"export {var}={shlex.quote(text)}\n" for var, text in values.items())
    if body.startswith("#!"):
        shebang, _, rest = body.partition("\n")
        return f"{shebang}\n{preamble}{rest}"
    return preamble + body


def render_prompt(template: str, params: Mapping[str, object], *, agent_type: str) -> str:
    """A user template rendered for `agent_type`: a safe script, or text for a real agent."""
    if agent_type == SCRIPT_AGENT:
        return render_script(template, params)
    return render_user_template(template, params)
