"""Builders of small camt.053 and MT940 files, written out as text so each test knows its exact bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"


@dataclass
class Detail:
    amount: str | None
    end_to_end: str = "NOTPROVIDED"
    reference: str | None = None
    name: str | None = None
    remittance: str | None = None
    sign: str | None = None


@dataclass
class Entry:
    amount: str
    sign: str = "CRDT"
    booked: str = "2026-11-22"
    value: str | None = "2026-11-22"
    status: str = "BOOK"
    account_ref: str | None = None
    details: list[Detail] = field(default_factory=list)
    batch_id: str | None = None
    currency: str = "EUR"
    reversal: bool = False


@dataclass
class Stmt:
    entries: list[Entry]
    opening: str
    closing: str
    sequence: int | None = 1
    legal: int | None = None
    currency: str = "EUR"
    identifier: str = "STMT-1"
    iban: str = "MA64011519000001205000534921"
    opening_sign: str = "CRDT"
    closing_sign: str = "CRDT"
    declared: int | None = None


def _detail(detail: Detail, version: str) -> str:
    parts = [f"<Refs><EndToEndId>{detail.end_to_end}</EndToEndId></Refs>"]
    if detail.amount is not None:
        if version == "02":
            parts.append(f'<AmtDtls><TxAmt><Amt Ccy="EUR">{detail.amount}</Amt></TxAmt></AmtDtls>')
        else:
            parts.append(
                f'<Amt Ccy="EUR">{detail.amount}</Amt><CdtDbtInd>{detail.sign or "CRDT"}</CdtDbtInd>'
            )
    if detail.name is not None:
        party = f"<Nm>{detail.name}</Nm>" if version == "02" else f"<Pty><Nm>{detail.name}</Nm></Pty>"
        parts.append(f"<RltdPties><Dbtr>{party}</Dbtr></RltdPties>")
    remittance = []
    if detail.remittance is not None:
        remittance.append(f"<Ustrd>{detail.remittance}</Ustrd>")
    if detail.reference is not None:
        remittance.append(f"<Strd><CdtrRefInf><Ref>{detail.reference}</Ref></CdtrRefInf></Strd>")
    if remittance:
        parts.append(f"<RmtInf>{''.join(remittance)}</RmtInf>")
    return f"<TxDtls>{''.join(parts)}</TxDtls>"


def _entry(entry: Entry, version: str) -> str:
    status = f"<Sts>{entry.status}</Sts>" if version == "02" else f"<Sts><Cd>{entry.status}</Cd></Sts>"
    value = f"<ValDt><Dt>{entry.value}</Dt></ValDt>" if entry.value else ""
    reference = f"<AcctSvcrRef>{entry.account_ref}</AcctSvcrRef>" if entry.account_ref else ""
    batch = ""
    if entry.batch_id is not None:
        batch = f"<Btch><PmtInfId>{entry.batch_id}</PmtInfId><NbOfTxs>{len(entry.details)}</NbOfTxs></Btch>"
    details = ""
    if entry.details or batch:
        details = f"<NtryDtls>{batch}{''.join(_detail(d, version) for d in entry.details)}</NtryDtls>"
    reversal = "<RvslInd>true</RvslInd>" if entry.reversal else ""
    return (
        f'<Ntry>\n<Amt Ccy="{entry.currency}">{entry.amount}</Amt><CdtDbtInd>{entry.sign}</CdtDbtInd>'
        f"{reversal}{status}<BookgDt><Dt>{entry.booked}</Dt></BookgDt>{value}{reference}"
        f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
        f"{details}\n</Ntry>\n"
    )


def _balance(code: str, amount: str, sign: str, currency: str) -> str:
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>{sign}</CdtDbtInd>'
        f"<Dt><Dt>2026-11-22</Dt></Dt></Bal>\n"
    )


def camt053(*statements: Stmt, version: str = "08") -> bytes:
    body = []
    for stmt in statements:
        sequence = f"<ElctrncSeqNb>{stmt.sequence}</ElctrncSeqNb>" if stmt.sequence is not None else ""
        legal = f"<LglSeqNb>{stmt.legal}</LglSeqNb>" if stmt.legal is not None else ""
        summary = ""
        if stmt.declared is not None:
            summary = (
                f"<TxsSummry><TtlNtries><NbOfNtries>{stmt.declared}</NbOfNtries></TtlNtries></TxsSummry>\n"
            )
        body.append(
            f"<Stmt>\n<Id>{stmt.identifier}</Id>{sequence}{legal}<CreDtTm>2026-11-23T06:00:00</CreDtTm>\n"
            f"<Acct><Id><IBAN>{stmt.iban}</IBAN></Id><Ccy>{stmt.currency}</Ccy></Acct>\n"
            + _balance("OPBD", stmt.opening, stmt.opening_sign, stmt.currency)
            + _balance("CLBD", stmt.closing, stmt.closing_sign, stmt.currency)
            + summary
            + "".join(_entry(e, version) for e in stmt.entries)
            + "</Stmt>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{NAMESPACE.format(version=version)}">\n<BkToCstmrStmt>\n'
        "<GrpHdr><MsgId>MSG-20261123</MsgId><CreDtTm>2026-11-23T06:00:00</CreDtTm></GrpHdr>\n"
        + "".join(body)
        + "</BkToCstmrStmt>\n</Document>\n"
    ).encode()


MT940_TWO_STATEMENTS = (
    ":20:TGR20261122\r\n"
    ":25:MA64011519000001205000534921\r\n"
    ":28C:00041/001\r\n"
    ":60F:C261121EUR1000,00\r\n"
    ":61:2611221122C125,00NTRFET-PAY-0001//TGR-8841\r\n"
    ":86:/EREF/ET-PAY-0001/NAME/Amina El Idrissi/REMI/Passeport ordinaire\r\n"
    ":61:2611221122D20,50NCHGNONREF//TGR-8842\r\n"
    ":86:Frais de tenue de compte\r\n"
    ":61:2611221122RC10,00NTRFET-PAY-0002//TGR-8843\r\n"
    ":86:/EREF/ET-PAY-0002/NAME/Youssef Benali/REMI/Retour\r\n"
    ":62F:C261122EUR1094,50\r\n"
    ":20:TGR20261123\r\n"
    ":25:MA64011519000001205000534921\r\n"
    ":28C:00042/001\r\n"
    ":60F:C261122EUR1094,50\r\n"
    ":61:2611231123C60,00NTRFET-PAY-0003//TGR-8850\r\n"
    ":86:/EREF/ET-PAY-0003/NAME/Fatima Zahra/REMI/Visa\r\n"
    ":62F:C261123EUR1154,50\r\n"
    "-\r\n"
)
