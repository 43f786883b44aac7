"""The official ``openai`` and ``ollama`` clients get schema-valid answers from the emulator over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.limits.provider import ProviderLimits
from docmill.llm import emulator_schema
from docmill.llm.emulator import EmulatorConfig
from docmill.llm.emulator_server import EmulatorServer
from docmill.llm.prompt import response_schema
from docmill.llm.providers import get_provider
from docmill.model.labels import LabelSet
from docmill.processors.classify_llm import LLMClassifier, LLMSettings

jsonschema = pytest.importorskip("jsonschema")
openai = pytest.importorskip("openai")
ollama = pytest.importorskip("ollama")

LETTER = "Dear Madam, I write this letter to thank you. Yours sincerely, Ann"
INVOICE = "Invoice number 2041. Amount due: 400 EUR. Please pay the invoice within 30 days."
LABEL_ONLY: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["invoice", "letter"]}},
    "required": ["label"],
    "additionalProperties": False,
}
RICH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"$ref": "#/$defs/Kind"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "pages": {"type": "integer", "minimum": 1, "maximum": 9},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
        "sender": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 5},
                "country": {"type": ["string", "null"]},
            },
            "required": ["name", "country"],
            "additionalProperties": False,
        },
        "amount": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "kind2": {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["invoice", "letter"]}]},
    },
    "required": ["label", "confidence", "pages", "urgent", "tags", "sender", "amount", "kind2"],
    "additionalProperties": False,
    "$defs": {"Kind": {"type": "string", "enum": ["invoice", "letter"]}},
}


class Sender(BaseModel):
    name: str
    vat_id: str | None


class Answer(BaseModel):
    label: Literal["invoice", "letter"]
    confidence: float
    sender: Sender
    lines: list[int]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(rpm=0, tpm=0, latency_median=0.0)) as running:
        yield running


def _openai(server: EmulatorServer, text: str, schema: dict[str, Any], strict: bool = True) -> Any:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(
        model="emulated-small",
        messages=[{"role": "user", "content": f"Classify this document:\n{text}"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": schema, "strict": strict},
        },
    )
    return json.loads(reply.choices[0].message.content or "")


@pytest.mark.parametrize(("text", "label"), [(LETTER, "letter"), (INVOICE, "invoice")])
def test_openai_strict_enum_gets_a_member_chosen_from_the_document(
    server: EmulatorServer, text: str, label: str
) -> None:
    answer = _openai(server, text, LABEL_ONLY)
    jsonschema.validate(answer, LABEL_ONLY)
    assert answer == {"label": label}


def test_openai_rich_schema_validates(server: EmulatorServer) -> None:
    answer = _openai(server, INVOICE, RICH)
    jsonschema.validate(answer, RICH)
    assert answer["label"] == "invoice" and answer["kind2"] == "invoice"


def test_openai_parse_with_a_pydantic_model(server: EmulatorServer) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)
    reply = client.chat.completions.parse(
        model="emulated-small", messages=[{"role": "user", "content": LETTER}], response_format=Answer
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, Answer) and parsed.label == "letter" and parsed.lines


def test_openai_refuses_a_strict_schema_with_an_optional_property(server: EmulatorServer) -> None:
    loose = {**LABEL_ONLY, "properties": {**LABEL_ONLY["properties"], "note": {"type": "string"}}}
    with pytest.raises(openai.BadRequestError, match="note"):
        _openai(server, LETTER, loose)
    jsonschema.validate(_openai(server, LETTER, loose, strict=False), loose)


def test_ollama_format_schema_and_json(server: EmulatorServer) -> None:
    client = ollama.Client(host=server.url)
    messages = [{"role": "user", "content": INVOICE}]
    schema = Answer.model_json_schema()
    reply = client.chat(model="emulated-small", messages=messages, format=schema)
    answer = json.loads(reply.message.content or "")
    jsonschema.validate(answer, schema)
    assert answer["label"] == "invoice"
    plain = client.chat(model="emulated-small", messages=messages, format="json")
    assert isinstance(json.loads(plain.message.content or ""), dict)


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_docmill_sends_its_labels_as_the_enum_and_gets_them_back(
    server: EmulatorServer, provider: str
) -> None:
    labels = LabelSet(
        names=("invoice", "letter"), descriptions={"invoice": "A bill to pay.", "letter": "Correspondence."}
    )
    base = f"{server.url}/v1" if provider == "openai" else server.url
    settings = LLMSettings(base_url=base, model="emulated-small", provider=provider)
    clf = LLMClassifier(labels, settings, limits=ProviderLimits.from_rates(None, None))
    body = get_provider(provider).body([], model="m", max_tokens=9, schema=response_schema(labels.names))
    sent = body["format"] if provider == "ollama" else body["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["label"]["enum"] == ["invoice", "letter"]
    assert emulator_schema.strict_schema_problem(body) is None  # OpenAI would accept it
    for text, label in ((LETTER, "letter"), (INVOICE, "invoice")):
        doc = Document(DocumentRef(label, label), sha256_bytes(text.encode()), text=text)
        assert clf.process(doc).metadata["label"] == label
    clf.teardown()
