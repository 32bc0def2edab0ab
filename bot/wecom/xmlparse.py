"""Hostile-input XML parsing for callback envelopes and decrypted payloads.

The outer envelope is parsed before anything is verified, so it is untrusted. The C
ElementTree parser is driven with a tree builder that refuses any document type declaration
the moment one starts: no DTD means no entity declarations to expand (billion laughs) and no
external entities to fetch; an undeclared entity reference is a parse error. This is the
guard defusedxml gives, at a third of the cost (defusedxml forces the pure-Python parser).
The depth is bounded too: the C parser builds any depth, but turning a tree thousands of levels
deep into dicts would recurse past Python's limit (a 500 where a 400 belongs).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser

XmlValue = str | dict[str, "XmlValue"]

# Elements from <xml> down, inclusive. Callbacks nest a few levels at most: the deepest we know,
# WeChat's photo events, is <xml><SendPicsInfo><PicList><item><PicMd5Sum>, five.
MAX_DEPTH = 16


class XmlError(ValueError):
    """The body is not well-formed XML or uses forbidden constructs."""


class _NoDoctypeBuilder(TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        msg = "document type declarations are not allowed"
        raise XmlError(msg)


def parse_xml(data: bytes | str) -> dict[str, XmlValue]:
    """Parse `<xml>…</xml>` into a dict of its children (nested elements become dicts)."""
    # A document that opens with its root element has no prolog, so no document type
    # declaration can follow (expat refuses one inside an element): the C parser's own tree
    # builder, a fifth faster than one that watches for it, is then just as safe.
    opens_with_root = data[:5] == (b"<xml>" if isinstance(data, bytes) else "<xml>")
    parser = XMLParser(target=TreeBuilder() if opens_with_root else _NoDoctypeBuilder())
    try:
        parser.feed(data)
        root = parser.close()
    except XmlError as exc:
        msg = f"unreadable XML: {exc}"
        raise XmlError(msg) from None
    except (ParseError, ValueError) as exc:
        msg = f"unreadable XML: {exc}"
        raise XmlError(msg) from None
    return _children(root, 1)


def _children(element: Element, depth: int) -> dict[str, XmlValue]:
    """`element`'s children (at `depth` + 1) as a dict; XmlError past MAX_DEPTH."""
    if depth >= MAX_DEPTH:
        msg = f"unreadable XML: nested deeper than {MAX_DEPTH} elements"
        raise XmlError(msg)
    out: dict[str, XmlValue] = {}
    for child in element:
        out[child.tag] = _children(child, depth + 1) if len(child) \
            else (child.text or "").strip()
    return out


def text_field(fields: dict[str, XmlValue], name: str) -> str:
    """A string field, or "" when absent or not a string."""
    value = fields.get(name, "")
    return value if isinstance(value, str) else ""
