"""docs/switchboard-api.yaml cannot drift: the simulator serves exactly its paths and shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from connectors.switchboard.simulator import create_app, run_in_thread
from rules.model import ActionKind, PhoneAction, Profile, User

DOC = Path(__file__).resolve().parents[2] / "docs" / "switchboard-api.yaml"
METHODS = {"get", "put", "post", "delete", "patch"}
USERS = [
    User(
        "anna",
        "Anna",
        "anna@example.se",
        "1234",
        (Profile("desk", "Desk", "1234"), Profile("mobile", "Mobile", "0701234567")),
    )
]


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(DOC.read_text(encoding="utf-8"))
    return data


def operations(paths: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): op
        for path, item in paths.items()
        for method, op in item.items()
        if method in METHODS
    }


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def check(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """A small JSON Schema subset (type, required, properties, items, enum, $ref)."""
    if "$ref" in schema:
        return check(doc, resolve(doc, schema["$ref"]), value, where)
    problems: list[str] = []
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    py = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    if kinds and not any(isinstance(value, py[k]) for k in kinds):
        return [f"{where}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        problems += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += check(doc, sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += check(doc, schema["items"], item, f"{where}[{i}]")
    return problems


def test_document_is_openapi_31_and_every_ref_resolves(doc: dict[str, Any]) -> None:
    assert str(doc["openapi"]).startswith("3.1")
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for sub in node.values():
                walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(doc)
    assert refs
    for ref in refs:
        resolve(doc, ref)


def test_every_documented_operation_is_served_and_nothing_else(doc: dict[str, Any]) -> None:
    served = operations(create_app(USERS).openapi()["paths"])
    documented = operations(doc["paths"])
    assert set(documented) - set(served) == set(), "documented but not served"
    assert set(served) - set(documented) == set(), "served but not documented"


def test_simulator_only_operations_are_marked(doc: dict[str, Any]) -> None:
    served = operations(create_app(USERS).openapi()["paths"])
    for key, op in operations(doc["paths"]).items():
        sim_only = "simulator" in served[key].get("tags", [])
        assert bool(op.get("x-simulator-only")) == sim_only, key


def test_mutating_contract_operations_require_an_idempotency_key(doc: dict[str, Any]) -> None:
    for (path, method), op in operations(doc["paths"]).items():
        if method == "get" or op.get("x-simulator-only"):
            continue
        names = [resolve(doc, p["$ref"])["name"] for p in op["parameters"] if "$ref" in p]
        assert "Idempotency-Key" in names, (path, method)


def test_real_answers_match_the_documented_schemas(doc: dict[str, Any]) -> None:
    sim = run_in_thread(create_app(USERS, token="t"))
    try:
        answers = _collect_answers(sim.url)
    finally:
        sim.stop()
    for path, method, status, answer in answers:
        path = path.replace("/anna/", "/{user_id}/")
        assert answer.status_code == status, (path, answer.text)
        spec = doc["paths"][path][method]["responses"][str(status)]
        if "$ref" in spec:
            spec = resolve(doc, spec["$ref"])
        schema = spec["content"]["application/json"]["schema"]
        assert check(doc, schema, answer.json(), f"{method} {path} {status}") == []
    assert answers[0][3].json()["start"] == "2025-03-10T08:00:00Z"  # UTC on the way out


def test_schema_check_reports_missing_and_mistyped_fields(doc: dict[str, Any]) -> None:
    schema = {"$ref": "#/components/schemas/PhoneState"}
    problems = check(doc, schema, {"mode": "sideways", "version": "1"}, "phone")
    assert "phone: missing active_profile" in problems
    assert any("sideways" in p for p in problems)
    assert any(p.startswith("phone.version") for p in problems)


def _collect_answers(url: str) -> list[tuple[str, str, int, httpx.Response]]:
    http = httpx.Client(base_url=url, headers={"Authorization": "Bearer t"})
    key = {"Idempotency-Key": "k1"}
    referral = {
        "reason": "meeting",
        "message": "Board",
        "start": "2025-03-10T09:00:00+01:00",
        "end": "2025-03-10T10:00:00Z",
        "start_action": PhoneAction.none().to_json(),
        "end_action": PhoneAction.profile_switch("mobile").to_json(),
    }
    answers = [
        (
            "/api/users/anna/referrals/{referral_id}",
            "put",
            200,
            http.put("/api/users/anna/referrals/r1", json=referral, headers=key),
        ),
        (
            "/api/users/{user_id}/actions",
            "post",
            200,
            http.post(
                "/api/users/anna/actions",
                json={"action": {"type": "close"}, "client": "calref"},
                headers={"Idempotency-Key": "k2"},
            ),
        ),
        ("/api/users", "get", 200, http.get("/api/users")),
        ("/api/users/{user_id}", "get", 200, http.get("/api/users/anna")),
        ("/api/users/{user_id}", "get", 404, http.get("/api/users/zed")),
        (
            "/api/users/{user_id}/actions",
            "post",
            422,
            http.post(
                "/api/users/anna/actions",
                json={"action": {"type": "profile_switch", "profile": "x"}},
                headers={"Idempotency-Key": "k3"},
            ),
        ),
        ("/api/users/{user_id}/route", "get", 200, http.get("/api/users/anna/route")),
        ("/api/log", "get", 200, http.get("/api/log")),
        ("/api/users", "get", 401, httpx.get(f"{url}/api/users")),
    ]
    http.close()
    return answers


def test_documented_action_types_are_the_model_action_kinds(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["PhoneAction"]
    assert schema["properties"]["type"]["enum"] == [k.value for k in ActionKind]
