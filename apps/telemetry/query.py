"""Gnocchi's two small languages, parsed into plain values (no Django):

- a search filter, ``project_id=abc and not (flavor_id!="1" or memory>=24)``, into Gnocchi's JSON form
  (``{"and": [{"=": {"project_id": "abc"}}, {"not": {...}}]}``), which ``check_filter`` validates;
- an aggregates operation, ``(aggregate mean (metric cpu_util mean))``, into nested lists.
"""
from __future__ import annotations

import re
from typing import Any

OPERATORS = {"=": "=", "==": "=", "eq": "=", "<": "<", "lt": "<", ">": ">", "gt": ">", "<=": "<=", "≤": "<=",
             "le": "<=", ">=": ">=", "≥": ">=", "ge": ">=", "!=": "!=", "≠": "!=", "ne": "!=", "in": "in",
             "like": "like"}
OR_SIGN = "\u2228"
BOOLEAN = {"and": "and", "∧": "and", "or": "or", OR_SIGN: "or"}
_SIGNS = "=<>≠≥≤∧\u2228(),\\[\\]"
_TOKEN = re.compile(r"""\s*(?:("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(==|!=|<=|>=|[""" + _SIGNS + r"""])|"""
                    r"""([^\s!"'""" + _SIGNS + r"""]+))""")


class QueryError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"Invalid filter: unexpected {text[pos:pos + 10]!r}")
        quoted, symbol, word = match.groups()
        if quoted is not None:
            out.append(("str", quoted[1:-1].replace('\\"', '"').replace("\\'", "'")))
        elif symbol is not None:
            out.append(("sym", symbol))
        elif word is not None:
            out.append(("word", word))
        pos = match.end()
    return out


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        return text
    lowered = text.lower()
    if lowered in ("null", "none"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class _FilterParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError("Invalid filter: unexpected end")
        self.pos += 1
        return token

    def parse(self) -> dict[str, Any]:
        tree = self.expression()
        if self.peek() is not None:
            raise QueryError(f"Invalid filter: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return tree

    def expression(self) -> dict[str, Any]:
        return self._joined("or", self.conjunction)

    def conjunction(self) -> dict[str, Any]:
        return self._joined("and", self.negation)

    def _joined(self, op: str, part: Any) -> dict[str, Any]:
        items = [part()]
        while (token := self.peek()) is not None and token[0] in ("word", "sym") \
                and BOOLEAN.get(token[1].lower()) == op:
            self.pos += 1
            items.append(part())
        return items[0] if len(items) == 1 else {op: items}

    def negation(self) -> dict[str, Any]:
        token = self.peek()
        if token == ("word", "not") or token == ("word", "NOT"):
            self.pos += 1
            return {"not": self.negation()}
        if token == ("sym", "("):
            self.pos += 1
            inner = self.expression()
            if self.take() != ("sym", ")"):
                raise QueryError("Invalid filter: ')' expected")
            return inner
        return self.comparison()

    def comparison(self) -> dict[str, Any]:
        kind, field = self.take()
        if kind != "word":
            raise QueryError(f"Invalid filter: attribute expected, got {field!r}")
        kind, op = self.take()
        if op.lower() not in OPERATORS:
            raise QueryError(f"Invalid filter: unknown operator {op!r}")
        op = OPERATORS[op.lower()]
        if op == "in":
            opening = self.take()
            if opening not in (("sym", "["), ("sym", "(")):
                raise QueryError("Invalid filter: a list expected after 'in'")
            values: list[Any] = []
            while True:
                kind, text = self.take()
                if (kind, text) in (("sym", "]"), ("sym", ")")):
                    break
                if (kind, text) == ("sym", ","):
                    continue
                values.append(_literal(kind, text))
            return {"in": {field: values}}
        kind, text = self.take()
        if kind == "sym":
            raise QueryError(f"Invalid filter: value expected, got {text!r}")
        return {op: {field: _literal(kind, text)}}


def parse_filter(text: str) -> dict[str, Any]:
    return _FilterParser(text).parse()


def check_filter(tree: Any, depth: int = 0) -> dict[str, Any]:
    """``tree`` if it is a well-formed filter in Gnocchi's JSON form, else QueryError."""
    if depth > 32:
        raise QueryError("Invalid filter: too deep")
    if not isinstance(tree, dict) or len(tree) != 1:
        raise QueryError("Invalid filter: one operator per object expected")
    (op, arg), = tree.items()
    op = op.lower() if isinstance(op, str) else op
    if op in BOOLEAN:
        if not isinstance(arg, list) or not arg:
            raise QueryError(f"Invalid filter: '{op}' takes a list")
        return {BOOLEAN[op]: [check_filter(item, depth + 1) for item in arg]}
    if op == "not":
        return {"not": check_filter(arg, depth + 1)}
    if op not in OPERATORS:
        raise QueryError(f"Invalid filter: unknown operator {op!r}")
    if not isinstance(arg, dict) or len(arg) != 1:
        raise QueryError(f"Invalid filter: '{op}' takes one attribute")
    (field, value), = arg.items()
    if not isinstance(field, str) or not field:
        raise QueryError("Invalid filter: attribute name expected")
    if OPERATORS[op] == "in" and not isinstance(value, list):
        raise QueryError("Invalid filter: 'in' takes a list")
    if isinstance(value, dict) or (OPERATORS[op] != "in" and isinstance(value, list)):
        raise QueryError(f"Invalid filter: bad value for {field!r}")
    return {OPERATORS[op]: {field: value}}


# ---- aggregates operations -----------------------------------------------------------------------------

_SEXP = re.compile(r"""\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()"]+))""")


def parse_operations(text: str) -> Any:
    """``(aggregate mean (metric cpu mean))`` → ["aggregate", "mean", ["metric", "cpu", "mean"]]."""
    stack: list[list[Any]] = [[]]
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _SEXP.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"Invalid operations: unexpected {text[pos:pos + 10]!r}")
        opening, closing, quoted, atom = match.groups()
        if opening:
            stack.append([])
            if len(stack) > 34:
                raise QueryError("Invalid operations: too deep")
        elif closing:
            if len(stack) == 1:
                raise QueryError("Invalid operations: unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        elif quoted is not None:
            stack[-1].append(quoted[1:-1])
        else:
            stack[-1].append(_literal("word", atom))
        pos = match.end()
    if len(stack) != 1 or len(stack[0]) != 1:
        raise QueryError("Invalid operations: one balanced expression expected")
    return stack[0][0]
