"""Read the queries out of Grafana dashboard JSON, and fill in their template variables.

For tests: the static dashboard checks use :func:`selectors` to see which metrics a query reads
and how; an end-to-end test can run every :func:`panel_queries` expression against a real
Prometheus after :func:`substitute` (``$target`` -> ``.*``, ``$job`` -> a job id, ...).
No Grafana and no network needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

#: A JSON object as Grafana stores it.
Json = dict[str, Any]

#: Grafana's variable syntaxes: $name, [[name]] or [[name:format]], ${name}, ${name.path:format}.
_VARIABLE: Final = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:}]+))?(?::([^}]+))?\}"
)
#: Values for Grafana's built-in interval variables when the caller gives none.
BUILTIN_DEFAULTS: Final[Mapping[str, str]] = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_IDENTIFIER: Final = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER: Final = re.compile(r"[0-9.][A-Za-z0-9_.]*")
_MATCHER: Final = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
#: Words followed by a parenthesised list of label names, not expressions.
_LABEL_LIST_KEYWORDS: Final = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right"}
)
#: Aggregation operators (may come before ``by (...)`` rather than ``(``) and other keywords.
_KEYWORDS: Final = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
    }
)
#: Grafana variable query functions that wrap a PromQL expression (label_values' second
#: argument is a label name).
_VARIABLE_QUERY: Final = re.compile(r"^\s*(label_values|query_result)\((.*)\)\s*$", re.DOTALL)


def iter_panels(dashboard: Json) -> Iterator[Json]:
    """Every panel of ``dashboard``, including those inside (collapsed) rows."""
    stack = list(reversed(dashboard.get("panels", [])))
    while stack:
        panel = stack.pop()
        yield panel
        stack.extend(reversed(panel.get("panels", [])))


def panel_queries(dashboard: Json) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query of every panel, in dashboard order."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def variable_queries(dashboard: Json) -> list[tuple[str, str]]:
    """(variable name, PromQL) for every query variable: the expression inside label_values()
    (a series selector) or query_result(), ready to run as an instant query."""
    result = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        raw = variable.get("query")
        text = raw.get("query", "") if isinstance(raw, dict) else str(raw or "")
        result.append((variable["name"], variable_query_expr(text)))
    return result


def variable_query_expr(query: str) -> str:
    """The PromQL inside a Grafana Prometheus variable query (``label_values(expr, label)``,
    ``label_values(label)``, ``query_result(expr)``); other text is returned unchanged."""
    match = _VARIABLE_QUERY.match(query)
    if match is None:
        return query.strip()
    function, inner = match.groups()
    if function == "query_result":
        return inner.strip()
    expr, comma, _label = inner.rpartition(",")
    return expr.strip() if comma else "{" + f'{inner.strip()}!=""' + "}"


def variable_references(text: str) -> set[str]:
    """Names of the template variables ``text`` refers to, without Grafana's built-ins
    (``__...``) and without regex back-references such as label_replace's ``$1``."""
    names = set()
    for match in _VARIABLE.finditer(text):
        name = match.group(1) or match.group(2) or match.group(4)
        if not name.startswith("__") and not name.isdigit():
            names.add(name)
    return names


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with every template variable replaced by ``variables[name]``, verbatim.

    Built-in interval variables default to :data:`BUILTIN_DEFAULTS`. A variable that is neither
    given nor built in raises ``KeyError`` so a test cannot run a half-substituted query.
    """
    values = {**BUILTIN_DEFAULTS, **variables}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name.isdigit():  # a regex back-reference ("$1" in label_replace), not a variable
            return match.group(0)
        if name not in values:
            raise KeyError(f"no value for template variable {name!r} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, label matchers text) of every vector selector in the PromQL ``expr``.

    A light scanner, enough for dashboard queries: it skips strings, ranges, numbers, template
    variables, function and aggregation names and the label lists of by/on/group_left...
    A selector without a metric name (``{job="x"}``) gives an empty name.
    """
    found: list[tuple[str, str]] = []
    i, n = 0, len(expr)
    while i < n:
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "[":
            i = expr.index("]", i) + 1
        elif char == "#":
            newline = expr.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif char == "$":
            match = _VARIABLE.match(expr, i)
            i = match.end() if match else i + 1
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            match = _NUMBER.match(expr, i)
            i = match.end() if match else i + 1
        elif char == "{":
            end = _closing_brace(expr, i)
            found.append(("", expr[i + 1 : end].strip()))
            i = end + 1
        elif _IDENTIFIER.match(expr, i):
            i = _identifier(expr, i, found)
        else:
            i += 1
    return found


def _identifier(expr: str, start: int, found: list[tuple[str, str]]) -> int:
    """Handle the identifier at ``start``; append it to ``found`` if it is a metric name."""
    match = _IDENTIFIER.match(expr, start)
    assert match is not None
    name, i = match.group(), match.end()
    after = i
    while after < len(expr) and expr[after].isspace():
        after += 1
    following = expr[after : after + 1]
    word = name.lower()
    if word in _LABEL_LIST_KEYWORDS:
        return expr.index(")", after) + 1 if following == "(" else i
    if word in _KEYWORDS or following == "(":
        return i
    if following == "{":
        end = _closing_brace(expr, after)
        found.append((name, expr[after + 1 : end].strip()))
        return end + 1
    found.append((name, ""))
    return i


def _skip_string(expr: str, start: int) -> int:
    """The index just after the string literal opening at ``start``."""
    quote, i = expr[start], start + 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
        elif expr[i] == quote:
            return i + 1
        else:
            i += 1
    raise ValueError(f"unterminated string in {expr!r}")


def _closing_brace(expr: str, start: int) -> int:
    """The index of the ``}`` closing the ``{`` at ``start``, strings skipped."""
    i = start + 1
    while i < len(expr):
        if expr[i] in "\"'`":
            i = _skip_string(expr, i)
        elif expr[i] == "}":
            return i
        else:
            i += 1
    raise ValueError(f"unclosed '{{' in {expr!r}")


def metric_names(expr: str) -> set[str]:
    """Names of the metrics (and recording rules) the PromQL ``expr`` reads."""
    return {name for name, _ in selectors(expr) if name}


def matchers(text: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) of the label matchers ``text`` (the inside of ``{...}``)."""
    parsed = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _MATCHER.match(text, position)
        if match is None:
            raise ValueError(f"cannot parse label matchers {text!r} at {position}")
        parsed.append((match.group(1), match.group(2), match.group(3)))
        position = match.end()
    return parsed
