"""Hostile-input XML parsing for callback envelopes and decrypted payloads.

The outer envelope is parsed before anything is verified, so it is untrusted: defusedxml
refuses DTDs, entity declarations and external references instead of expanding them.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

XmlValue = str | dict[str, "XmlValue"]


class XmlError(ValueError):
    """The body is not well-formed XML or uses forbidden constructs."""


def parse_xml(data: bytes | str) -> dict[str, XmlValue]:
    """Parse `<xml>…</xml>` into a dict of its children (nested elements become dicts)."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        msg = f"unreadable XML: {exc}"
        raise XmlError(msg) from None
    return _children(root)


def _children(element: Element) -> dict[str, XmlValue]:
    out: dict[str, XmlValue] = {}
    for child in element:
        out[child.tag] = _children(child) if len(child) else (child.text or "").strip()
    return out


def text_field(fields: dict[str, XmlValue], name: str) -> str:
    """A string field, or "" when absent or not a string."""
    value = fields.get(name, "")
    return value if isinstance(value, str) else ""
