"""The REST endpoint reference, generated from ``docs/reference/openapi.yaml``.

:func:`render` returns MyST Markdown: every operation (method, path, who may call it,
parameters, request body, responses) and every schema with its properties, linked to
each other. The OpenAPI file stays the single description; this is its readable form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

SPEC = Path(__file__).resolve().parent.parent / "reference" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def load(path: Path = SPEC) -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every ``(path, method, operation)`` in document order."""
    return [
        (path, method, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]


def schema_label(name: str) -> str:
    """The cross-reference target of a schema, e.g. ``api-schema-lease``."""
    return f"api-schema-{name.lower()}"


def response_label(name: str) -> str:
    """The cross-reference target of a shared response, e.g. ``api-response-notfound``."""
    return f"api-response-{name.lower()}"


def render_response(name: str, resp: dict[str, Any]) -> str:
    """One shared (error) response: what it means and an example body."""
    out = [f"({response_label(name)})=", f"### {name}", "", resp.get("description", "").strip(), ""]
    for media, item in resp.get("content", {}).items():
        out += [f"Body (`{media}`): {type_text(item.get('schema'))}", ""]
        if "example" in item:
            example = json.dumps(item["example"], indent=2, ensure_ascii=False)
            out += ["```json", example, "```", ""]
    return "\n".join(out)


def operation_label(method: str, path: str) -> str:
    """The cross-reference target of an operation, e.g. ``api-get-api-v1-leases-id``."""
    slug = "".join(c if c.isalnum() else "-" for c in path.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"api-{method}-{slug}"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _cell(text: Any) -> str:
    """Text that is safe inside one Markdown table cell."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def type_text(schema: dict[str, Any] | None) -> str:
    """A short type for a schema: ``string``, ``integer or null``, a schema link, ``array of Lease``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{schema_label(name)})"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(type_text(s) for s in schema[key])
    if "const" in schema:
        return f"`{schema['const']!r}`".replace("'", '"')
    types = schema.get("type", "object")
    types = types if isinstance(types, list) else [types]
    parts = []
    for t in types:
        if t == "array":
            parts.append("array of " + type_text(schema.get("items")))
        elif t == "string" and "format" in schema:
            parts.append(f"string ({schema['format']})")
        else:
            parts.append(t)
    text = " or ".join(parts)
    if "enum" in schema:
        text += ": " + ", ".join(f"`{v}`" for v in schema["enum"] if v is not None)
    return text


def constraints(schema: dict[str, Any]) -> str:
    """Limits and defaults of a schema, as a short phrase."""
    bits = []
    for key, word in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
    ):
        if key in schema:
            bits.append(f"{word} {schema[key]}")
    if "pattern" in schema:
        bits.append(f"pattern `{schema['pattern']}`")
    if "default" in schema:
        bits.append(f"default `{schema['default']!r}`".replace("'", '"').replace("None", "null"))
    return "; ".join(bits)


def _schema_of(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of ``oneOf: [X, {type: null}]``, for constraints."""
    for key in ("oneOf", "anyOf"):
        branches = [s for s in schema.get(key, ()) if s.get("type") != "null"]
        if len(branches) == 1:
            return branches[0]
    return schema


def render_operation(path: str, method: str, op: dict[str, Any], spec: dict[str, Any]) -> str:
    """One operation as a section."""
    out = [
        f"({operation_label(method, path)})=",
        f"### `{method.upper()} {path}`",
        "",
        f"**{op.get('summary', '').strip()}**",
        "",
    ]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    security = op.get("security", spec.get("security"))
    if security == []:
        out += ["*No authentication needed.*", ""]
    params = [*spec["paths"][path].get("parameters", []), *op.get("parameters", [])]
    if params:
        out += ["| parameter | in | type | description |", "| --- | --- | --- | --- |"]
        for p in params:
            if "$ref" in p:
                p = spec["components"]["parameters"][_ref_name(p["$ref"])]
            schema = p.get("schema", {})
            extra = constraints(schema)
            req = " (required)" if p.get("required") else ""
            desc = _cell(p.get("description", "")) + (f" ({extra})" if extra else "")
            out.append(f"| `{p['name']}`{req} | {p['in']} | {type_text(schema)} | {desc} |")
        out.append("")
    body = op.get("requestBody")
    if body:
        content = body.get("content", {})
        for media, item in content.items():
            out += [f"Request body (`{media}`): {type_text(item.get('schema'))}", ""]
    out += ["| status | meaning | body |", "| --- | --- | --- |"]
    for code, resp in op.get("responses", {}).items():
        meaning = _cell(resp.get("description"))
        if "$ref" in resp:
            name = _ref_name(resp["$ref"])
            resp = spec["components"]["responses"][name]
            meaning = f"[{name}](#{response_label(name)})"
        media = resp.get("content", {})
        kinds = [
            f"{type_text(item.get('schema'))} (`{name}`)"
            if name != "application/json"
            else type_text(item.get("schema"))
            for name, item in media.items()
        ]
        out.append(f"| {code} | {meaning} | {' or '.join(kinds) or '—'} |")
    out.append("")
    return "\n".join(out)


def render_schema(name: str, schema: dict[str, Any]) -> str:
    """One schema as a section with its properties."""
    out = [f"({schema_label(name)})=", f"### {name}", ""]
    if schema.get("description"):
        out += [schema["description"].strip(), ""]
    if "oneOf" in schema:
        out += ["One of: " + ", ".join(type_text(s) for s in schema["oneOf"]) + ".", ""]
        disc = schema.get("discriminator", {})
        if disc:
            out += [f"The `{disc['propertyName']}` field says which.", ""]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", ()))
        out += ["| field | type | description |", "| --- | --- | --- |"]
        for prop, sub in props.items():
            extra = constraints(_schema_of(sub))
            desc = _cell(sub.get("description", "")) + (f" ({extra})" if extra else "")
            req = " (required)" if prop in required else ""
            out.append(f"| `{prop}`{req} | {type_text(sub)} | {desc} |")
        out.append("")
        if schema.get("additionalProperties") is False:
            out += ["Other fields are refused with 400.", ""]
    return "\n".join(out)


def render(path: Path = SPEC) -> str:
    """Every operation in document order, then the shared responses, then every schema."""
    spec = load(path)
    out = ["## Endpoints", ""]
    out += [render_operation(p, m, op, spec) for p, m, op in operations(spec)]
    out += ["## Error responses", ""]
    out += [
        render_response(n, r) for n, r in spec.get("components", {}).get("responses", {}).items()
    ]
    out += ["## Schemas", ""]
    out += [render_schema(n, s) for n, s in spec.get("components", {}).get("schemas", {}).items()]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover - a preview for writers
    print(render())
