"""CMI's server-to-server API (CC5 XML): capture (PostAuth), Void, Credit and the order-status query."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from providers.transport import ProviderResponseError

# Untrusted XML: no entities, no DTD, no network, no huge trees.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cc5Request:
    name: str
    password: str
    client_id: str
    order_id: str
    type: str | None = None  # PostAuth, Void, Credit; None for a query
    total: str | None = None  # decimal amount, "12.50"
    currency: str | None = None  # ISO 4217 numeric, "504"
    extra: dict[str, str] = field(default_factory=dict)

    def to_xml(self) -> bytes:
        root = etree.Element("CC5Request")
        for tag, value in (
            ("Name", self.name),
            ("Password", self.password),
            ("ClientId", self.client_id),
            ("Type", self.type),
            ("OrderId", self.order_id),
            ("Total", self.total),
            ("Currency", self.currency),
        ):
            if value is not None:
                etree.SubElement(root, tag).text = value
        if self.extra:
            extra = etree.SubElement(root, "Extra")
            for tag, value in self.extra.items():
                etree.SubElement(extra, tag).text = value
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    @classmethod
    def from_xml(cls, body: bytes) -> Cc5Request:
        root = _root(body, "CC5Request")
        fields = {
            child.tag: (child.text or "")
            for child in root
            if isinstance(child.tag, str) and child.tag != "Extra"
        }
        extra = root.find("Extra")
        return cls(
            name=fields.get("Name", ""),
            password=fields.get("Password", ""),
            client_id=fields.get("ClientId", ""),
            order_id=fields.get("OrderId", ""),
            type=fields.get("Type"),
            total=fields.get("Total"),
            currency=fields.get("Currency"),
            extra=_children(extra),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Cc5Response:
    order_id: str
    response: str  # Approved, Declined or Error
    proc_return_code: str  # "00" is approved
    trans_id: str = ""
    err_msg: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return self.response == "Approved" and self.proc_return_code == "00"

    def to_xml(self) -> bytes:
        root = etree.Element("CC5Response")
        for tag, value in (
            ("OrderId", self.order_id),
            ("Response", self.response),
            ("ProcReturnCode", self.proc_return_code),
            ("TransId", self.trans_id),
            ("ErrMsg", self.err_msg),
        ):
            etree.SubElement(root, tag).text = value
        extra = etree.SubElement(root, "Extra")
        for tag, value in self.extra.items():
            etree.SubElement(extra, tag).text = value
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    @classmethod
    def from_xml(cls, body: bytes) -> Cc5Response:
        root = _root(body, "CC5Response")

        def text(tag: str) -> str:
            found = root.find(tag)
            return (found.text or "") if found is not None else ""

        if not text("Response"):
            raise ProviderResponseError("CMI answer has no <Response>")
        return cls(
            order_id=text("OrderId"),
            response=text("Response"),
            proc_return_code=text("ProcReturnCode"),
            trans_id=text("TransId"),
            err_msg=text("ErrMsg"),
            extra=_children(root.find("Extra")),
        )


def _root(body: bytes, expected: str) -> etree._Element:
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProviderResponseError(f"CMI sent XML that does not parse: {exc}") from exc
    if root.tag != expected:
        raise ProviderResponseError(f"expected <{expected}>, got <{root.tag}>")
    return root


def _children(element: etree._Element | None) -> dict[str, str]:
    if element is None:
        return {}
    return {child.tag: (child.text or "") for child in element if isinstance(child.tag, str)}
