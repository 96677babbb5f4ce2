"""What a structured-output request asks for, read from `SamplingParams.structured_output` (the
fields the adapters keep: OpenAI's `response_format`, vLLM's and NIM's `guided_*` and vLLM's
`structured_outputs`) into one grammar: a JSON schema, any JSON object, a regex, a choice among
strings, or an EBNF grammar."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

KINDS = ("json_schema", "json_object", "regex", "choice", "grammar")
# "Any JSON object": xgrammar's built-in JSON grammar also admits a top-level array.
ANY_OBJECT = json.dumps({"type": "object"})
# vLLM's `structured_outputs` keys and the kinds they name.
_STRUCTURED_OUTPUTS = {"json": "json_schema", "regex": "regex", "choice": "choice",
                       "grammar": "grammar", "json_object": "json_object"}


@dataclass(frozen=True)
class GrammarSpec:
    """One grammar. kind: one of KINDS; source: the JSON schema as a JSON string, the regex, or
    the EBNF grammar (a choice is compiled as the grammar of its alternatives)."""

    kind: str
    source: str


def _schema_text(field: str, schema: Any) -> str:
    if isinstance(schema, str):
        try:
            json.loads(schema)
        except ValueError as e:
            raise ValueError(f"structured_output {field}: not a JSON schema ({e})") from None
        return schema
    if isinstance(schema, Mapping):
        return json.dumps(schema)
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return json.dumps(schema.model_json_schema())  # a pydantic model class
    raise TypeError(f"structured_output {field} must be a JSON schema (a string or a dict) or a "
                    f"pydantic model class, got {type(schema).__name__}")


def _choice_grammar(field: str, choices: Any) -> str:
    if isinstance(choices, str) or not isinstance(choices, (list, tuple)) or not choices:
        raise ValueError(f"structured_output {field} must be a non-empty list of strings, got "
                         f"{choices!r}")
    for i, c in enumerate(choices):
        if not isinstance(c, str) or not c:
            raise ValueError(f"structured_output {field}[{i}]={c!r} must be a non-empty string")
    # JSON string literals are valid EBNF literals (the same escapes).
    return "root ::= " + " | ".join(json.dumps(c) for c in choices)


def _text(field: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise TypeError(f"structured_output {field} must be a non-empty string, got {v!r}")
    return v


def _one(kind: str, field: str, value: Any) -> GrammarSpec:
    if kind == "json_schema":
        return GrammarSpec(kind, _schema_text(field, value))
    if kind == "json_object":
        return GrammarSpec(kind, ANY_OBJECT)
    if kind == "choice":
        return GrammarSpec(kind, _choice_grammar(field, value))
    return GrammarSpec(kind, _text(field, value))


def grammar_spec(structured_output: Optional[Mapping[str, Any]]) -> Optional[GrammarSpec]:
    """The grammar a request asks for, or None. Raises ValueError / TypeError naming the field
    for an unknown kind, a malformed value, or more than one grammar in one request."""
    if not structured_output:
        return None
    found = []
    for field, value in structured_output.items():
        if field == "guided_json":
            found.append(_one("json_schema", field, value))
        elif field == "guided_regex":
            found.append(_one("regex", field, value))
        elif field == "guided_choice":
            found.append(_one("choice", field, value))
        elif field == "guided_grammar":
            found.append(_one("grammar", field, value))
        elif field == "response_format":
            found.append(_response_format(value))
        elif field == "structured_outputs":
            if not isinstance(value, Mapping):
                raise TypeError(f"structured_output structured_outputs must be a mapping, got "
                                f"{type(value).__name__}")
            for key, v in value.items():
                if key not in _STRUCTURED_OUTPUTS:
                    raise ValueError(f"structured_output structured_outputs.{key} is not a "
                                     f"known kind; use one of {sorted(_STRUCTURED_OUTPUTS)}")
                if v is None or (key == "json_object" and v is False):
                    continue
                found.append(_one(_STRUCTURED_OUTPUTS[key], f"structured_outputs.{key}", v))
        else:
            raise ValueError(f"structured_output field {field!r} is not a structured-output "
                             f"kind; use guided_json, guided_regex, guided_choice, "
                             f"guided_grammar, response_format or structured_outputs")
    if len(found) > 1:
        raise ValueError(f"structured_output asks for {len(found)} grammars "
                         f"({', '.join(s.kind for s in found)}); a request takes one")
    return found[0] if found else None


def _response_format(fmt: Any) -> GrammarSpec:
    if not isinstance(fmt, Mapping):
        raise TypeError(f"structured_output response_format must be a mapping, got "
                        f"{type(fmt).__name__}")
    kind = fmt.get("type")
    if kind == "json_object":
        return GrammarSpec("json_object", ANY_OBJECT)
    if kind == "json_schema":
        inner = fmt.get("json_schema")
        if not isinstance(inner, Mapping) or "schema" not in inner:
            raise ValueError("structured_output response_format json_schema needs "
                             "{'json_schema': {'schema': ...}}")
        return GrammarSpec("json_schema", _schema_text("response_format.json_schema.schema",
                                                       inner["schema"]))
    raise ValueError(f"structured_output response_format type {kind!r} is not a grammar; use "
                     f"'json_object' or 'json_schema'")
