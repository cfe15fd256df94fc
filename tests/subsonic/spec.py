"""The OpenSubsonic specification as a validator, and the XML <-> JSON shape comparison.

The spec (``openapi/openapi.json``) keeps each endpoint in ``openapi/endpoints/NAME.json``
whose 200 response points (by a relative ``$ref``) at a schema of the whole body,
``{"subsonic-response": oneOf[success, failure]}``. Files are loaded lazily through a
``referencing`` registry keyed by ``file://`` URIs, so every relative ``$ref`` resolves
against the file that holds it.
"""

from __future__ import annotations

import functools
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NS = "http://subsonic.org/restapi"


def spec_dir() -> Path:
    """``$OPENSUBSONIC_SPEC`` or ``<repo>/../shared/opensubsonic`` (or /work/shared/opensubsonic)."""
    candidates = [os.environ.get("OPENSUBSONIC_SPEC"), str(REPO.parent / "shared/opensubsonic"),
                  "/work/shared/opensubsonic"]
    for c in candidates:
        if c and (Path(c) / "openapi/openapi.json").is_file():
            return Path(c).resolve()
    raise RuntimeError("the OpenSubsonic spec was not found (set OPENSUBSONIC_SPEC to its folder; "
                       "tried %s)" % ", ".join(c for c in candidates if c))


class Spec:
    def __init__(self, root: Optional[Path] = None):
        self.root = (root or spec_dir()) / "openapi"
        self.openapi = json.loads((self.root / "openapi.json").read_text())
        self.registry = Registry(retrieve=self._retrieve)

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _load(uri: str) -> Any:
        assert uri.startswith("file://"), uri
        return json.loads(Path(uri[len("file://"):]).read_text())

    def _retrieve(self, uri: str) -> Resource:
        return Resource.from_contents(self._load(uri), default_specification=DRAFT7)

    def _uri(self, path: Path) -> str:
        return "file://" + str(path.resolve())

    def _deref(self, node: Any, base: Path) -> tuple:
        """Follows a chain of ``$ref`` (file references only, as the spec's endpoints use)."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            file_part, _, frag = ref.partition("#")
            target = (base.parent / file_part).resolve() if file_part else base
            node = json.loads(target.read_text())
            for part in [p for p in frag.split("/") if p]:
                node = node[part]
            base = target
        return node, base

    def endpoints(self) -> List[str]:
        return sorted(p[len("/rest/"):] for p in self.openapi["paths"])

    @functools.lru_cache(maxsize=None)
    def response_schema_uri(self, endpoint: str) -> str:
        """A URI (file + JSON pointer) of the JSON schema of ``endpoint``'s 200 answer."""
        item = self.openapi["paths"].get("/rest/" + endpoint)
        if item is None:
            return self._uri(self.root / "schemas/SubsonicResponse.json")
        op, base = self._deref(item, self.root / "openapi.json")
        get = op.get("get") or op.get("post")
        resp, rbase = self._deref(get["responses"]["200"], base)
        content = resp.get("content", {})
        if "application/json" not in content:
            # Binary endpoints (stream, download, getCoverArt, hls): an error body in JSON is
            # the common wrapper.
            return self._uri(self.root / "schemas/SubsonicResponse.json")
        schema = content["application/json"]["schema"]
        if set(schema) == {"$ref"} and "#" not in schema["$ref"]:
            return self._uri((rbase.parent / schema["$ref"]).resolve())
        # An inline schema: point into the response file.
        pointer = "#/content/application~1json/schema"
        if rbase.name.endswith(".json") and rbase != base:
            return self._uri(rbase) + pointer
        method = "get" if "get" in op else "post"
        return self._uri(base) + "#/%s/responses/200/content/application~1json/schema" % method

    def validator(self, endpoint: str) -> jsonschema.protocols.Validator:
        schema = {"$ref": self.response_schema_uri(endpoint)}
        return jsonschema.Draft7Validator(schema, registry=self.registry)

    def validate(self, endpoint: str, body: Any) -> None:
        """Raises AssertionError listing every violation of ``endpoint``'s response schema."""
        endpoint = endpoint_name(endpoint)
        v = self.validator(endpoint)
        errors = sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            lines = []
            for e in errors[:10]:
                lines.append("  at /%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:300]))
                # oneOf failures: say why each branch failed, it is where the real cause is.
                for sub in sorted(e.context or [], key=lambda s: list(s.absolute_path))[:6]:
                    lines.append("      - /%s: %s" % ("/".join(map(str, sub.absolute_path)), sub.message[:200]))
            raise AssertionError("%s: the JSON answer breaks the OpenSubsonic schema (%s):\n%s\nbody: %s"
                                 % (endpoint, self.response_schema_uri(endpoint), "\n".join(lines),
                                    json.dumps(body)[:1500]))
        inner = body.get("subsonic-response") if isinstance(body, dict) else None
        assert isinstance(inner, dict), "%s: no subsonic-response object: %r" % (endpoint, body)
        assert inner.get("status") in ("ok", "failed"), inner


def endpoint_name(path: str) -> str:
    """``/rest/getAlbum.view`` -> ``getAlbum``."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".view", ".m3u8"):
        if name.endswith(suffix) and name != "hls.m3u8":
            name = name[: -len(suffix)]
    return name


@functools.lru_cache(maxsize=1)
def spec() -> Spec:
    return Spec()


# --------------------------------------------------------------------- XML

def xml_to_tree(text: bytes) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "{%s}subsonic-response" % NS, "root element %s, expected {%s}subsonic-response" % (root.tag, NS)
    return root


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(v)  # compared loosely below
    return str(v)


def _same_scalar(xml_value: str, json_value: Any) -> bool:
    if _scalar(json_value) == xml_value:
        return True
    if isinstance(json_value, (int, float)) and not isinstance(json_value, bool):
        try:
            return float(xml_value) == float(json_value)
        except ValueError:
            return False
    return False


def compare_xml_json(elem: ET.Element, obj: Dict[str, Any], path: str = "subsonic-response",
                     ignore: frozenset = frozenset()) -> List[str]:
    """Differences between an XML element and the JSON object of the same response, by the
    Subsonic mapping: scalars are attributes (``value`` is the element's text), objects are child
    elements, arrays are repeated child elements. Returns a list of differences (empty: same)."""
    diffs: List[str] = []
    children: Dict[str, List[ET.Element]] = {}
    for c in elem:
        tag = c.tag.split("}", 1)[-1]
        if not c.tag.startswith("{%s}" % NS):
            diffs.append("%s/%s: element outside the namespace %s" % (path, c.tag, NS))
        children.setdefault(tag, []).append(c)
    seen_children = set()
    for key, value in obj.items():
        if key in ignore:
            continue
        p = "%s/%s" % (path, key)
        if key == "value" and not isinstance(value, (dict, list)):
            if (elem.text or "") != _scalar(value):
                diffs.append("%s: XML text %r, JSON %r" % (p, elem.text, value))
            continue
        if isinstance(value, dict):
            seen_children.add(key)
            els = children.get(key, [])
            if not els and not value:
                continue
            if len(els) != 1:
                diffs.append("%s: %d XML elements for a JSON object" % (p, len(els)))
            else:
                diffs += compare_xml_json(els[0], value, p, ignore)
        elif isinstance(value, list):
            seen_children.add(key)
            els = children.get(key, [])
            if len(els) != len(value):
                diffs.append("%s: %d XML elements, %d JSON items" % (p, len(els), len(value)))
                continue
            for i, (e, v) in enumerate(zip(els, value)):
                if isinstance(v, dict):
                    diffs += compare_xml_json(e, v, "%s[%d]" % (p, i), ignore)
                elif (e.text or "") != _scalar(v):
                    diffs.append("%s[%d]: XML text %r, JSON %r" % (p, i, e.text, v))
        else:
            if key in elem.attrib:
                if not _same_scalar(elem.attrib[key], value):
                    diffs.append("%s: XML %r, JSON %r" % (p, elem.attrib[key], value))
            else:
                diffs.append("%s: JSON has %r, no such XML attribute" % (p, value))
    for key in elem.attrib:
        if key not in obj and key not in ignore:
            diffs.append("%s/@%s: XML attribute %r missing from the JSON" % (path, key, elem.attrib[key]))
    for key, els in children.items():
        if key not in seen_children and key not in ignore:
            # An empty JSON object/array may be left out of either side; a non-empty one may not.
            if any(len(e) or e.attrib or (e.text or "").strip() for e in els):
                diffs.append("%s/%s: XML element(s) missing from the JSON" % (path, key))
    return diffs
