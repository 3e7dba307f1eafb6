"""Interop: stamps and trust lists made by `receipts` pass an independent verifier built from the doc."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import base45
import pytest

from ledger.money import Money
from receipts.algorithms import Algorithm
from receipts.claims import Channel, StampClaims
from receipts.codec import PREFIX, issue_stamp, verify_stamp
from receipts.envelope import KdfParams
from receipts.fees import Fee, FeeTable
from receipts.keyring import InMemoryKeyStore, Keyring
from receipts.keys import KeyPurpose
from receipts.numbers import StampNumber
from receipts.reasons import StampRejected
from receipts.signers import SoftwareSigner, open_software_signer
from receipts.trust_list import TrustList
from tests.interop import et1_reference as ref

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DENIED = StampNumber.parse("1111 2222 3333 4444-0")
FEES = FeeTable([Fee("PASSPORT-MINOR", 7, "Passeport (mineur)", "جواز السفر (قاصر)", "Passport (minor)")])
ISSUER_FEES = FeeTable([*FEES, Fee("VISA-C", 8, "Visa", "تأشيرة", "Visa")])  # newer than the trust list


@dataclass(frozen=True)
class Issuer:
    signers: dict[Algorithm, SoftwareSigner]
    trust: TrustList
    document: bytes  # the trust list, signed
    anchor_pem: str  # the trust-list public key, as a verifier receives it
    stamp_key_pem: str

    def reference_trust(self, now: datetime = NOW) -> ref.TrustList:
        anchors = dict([ref.anchor_from_pem(self.anchor_pem)])
        return ref.read_trust_list(self.document, anchors, now=int(now.timestamp()))


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    keyring = Keyring(InMemoryKeyStore())
    kdf = KdfParams(memory_kib=8192, iterations=1, lanes=1)
    start = NOW - timedelta(days=1)
    records = {
        algorithm: keyring.create(KeyPurpose.STAMP, passphrase="p", now=start, algorithm=algorithm, kdf=kdf)
        for algorithm in Algorithm
    }
    anchor = keyring.create(KeyPurpose.TRUST_LIST, passphrase="p", now=start, kdf=kdf)
    trust = TrustList.build(
        issuer="MA",
        keys=records.values(),
        fees=FEES,
        denied=[DENIED],
        issued_at=NOW,
    )
    return Issuer(
        signers={algorithm: open_software_signer(record, "p") for algorithm, record in records.items()},
        trust=trust,
        document=trust.sign(open_software_signer(anchor, "p")),
        anchor_pem=anchor.verification_key().to_pem(),
        stamp_key_pem=records[Algorithm.ES256].verification_key().to_pem(),
    )


def claims(**changes: Any) -> StampClaims:
    base = StampClaims.new(
        issuer="MA",
        audience="FR-PAR",
        fee_code="PASSPORT-MINOR",
        amount=Money(2750, "EUR"),
        channel=Channel.COUNTER,
        schedule_version=4,
        issued_at=NOW,
    )
    return replace(base, **changes)


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_reference_decoder_verifies_a_receipts_stamp(issuer: Issuer, algorithm: Algorithm) -> None:
    issued = claims()
    text = issue_stamp(issued, issuer.signers[algorithm], ISSUER_FEES)
    decoded = ref.verify(text, issuer.reference_trust(), "FR-PAR", int(NOW.timestamp()))
    assert decoded["number"] == issued.number.digits
    assert decoded["aud"] == "FR-PAR"
    assert (decoded["amount"], decoded["currency"]) == (2750, 978)
    assert (decoded["fee_number"], decoded["fee_code"]) == (7, "PASSPORT-MINOR")
    assert decoded["channel"] == "counter"
    assert decoded["schedule_version"] == 4
    assert decoded["iat"] == int(NOW.timestamp())
    assert decoded["exp"] == int(issued.expires_at.timestamp())


def test_reference_decoder_reads_the_trust_list(issuer: Issuer) -> None:
    reference = issuer.reference_trust()
    assert set(reference.keys) == set(issuer.trust.keys)
    assert reference.deny == {int(DENIED)}
    assert reference.fees[7]["ar"] == "جواز السفر (قاصر)"


def test_reference_decoder_refuses_a_trust_list_from_a_stamp_key(issuer: Issuer) -> None:
    with pytest.raises(ref.Refused, match="unknown_signer"):
        ref.read_trust_list(issuer.document, dict([ref.anchor_from_pem(issuer.stamp_key_pem)]), now=0)


def test_reference_decoder_refuses_a_stale_trust_list(issuer: Issuer) -> None:
    with pytest.raises(ref.Refused, match="stale"):
        issuer.reference_trust(now=NOW + issuer.trust.max_offline_age + timedelta(seconds=1))


def test_both_verifiers_agree_on_every_tampered_variant(issuer: Issuer) -> None:
    """Every bit flip of a stamp is refused by both, with the same documented reason code."""
    reference = issuer.reference_trust()
    text = issue_stamp(claims(), issuer.signers[Algorithm.ES256], ISSUER_FEES)
    signed = bytes(base45.b45decode(text[len(PREFIX) :]))
    for position in range(len(signed)):
        for bit in range(8):
            tampered = bytearray(signed)
            tampered[position] ^= 1 << bit
            variant = PREFIX + base45.b45encode(bytes(tampered)).decode()
            with pytest.raises(StampRejected) as ours:
                verify_stamp(variant, issuer.trust, audience="FR-PAR", now=NOW)
            with pytest.raises(ref.Refused) as theirs:
                ref.verify(variant, reference, "FR-PAR", int(NOW.timestamp()))
            assert theirs.value.code == ours.value.reason.value, f"byte {position} bit {bit}"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audience": "BE-BRU"}, "wrong_consulate"),
        ({"number": DENIED}, "denied"),
        ({"fee_code": "VISA-C"}, "unknown_fee"),
        ({"issued_at": NOW + timedelta(hours=1), "expires_at": NOW + timedelta(days=30)}, "not_yet_valid"),
    ],
)
def test_both_verifiers_refuse_the_same_stamps(issuer: Issuer, change: dict[str, object], code: str) -> None:
    text = issue_stamp(claims(**change), issuer.signers[Algorithm.EDDSA], ISSUER_FEES)
    with pytest.raises(ref.Refused, match=code):
        ref.verify(text, issuer.reference_trust(), "FR-PAR", int(NOW.timestamp()))
    with pytest.raises(StampRejected) as ours:
        verify_stamp(text, issuer.trust, audience="FR-PAR", now=NOW)
    assert ours.value.reason.value == code


def doc_block(name: str) -> str:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "stamp-format.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name} -->\n```\n(.*?)```", text, re.DOTALL)
    assert found is not None
    return found.group(1)


def test_reference_decoder_accepts_the_documented_examples() -> None:
    """The doc's trust list, read with the doc's anchor, verifies the doc's two stamps."""
    document = bytes.fromhex("".join(line[6:] for line in doc_block("example-trust-list").splitlines()))
    anchors = dict([ref.anchor_from_pem(doc_block("example-trust-list-anchor"))])
    now = int(datetime(2025, 3, 6, tzinfo=UTC).timestamp())
    trust = ref.read_trust_list(document, anchors, now=now)
    assert trust.deny == {11112222333344440}
    for name, fee_code in (("example-eddsa-text", "PASSPORT"), ("example-es256-text", "CNIE")):
        decoded = ref.verify(doc_block(name).strip(), trust, "FR-PAR", now)
        assert decoded["number"] == "48210933756102841"
        assert decoded["fee_code"] == fee_code
