"""Acquirer settlement reports (sandbox, CMI, Stripe): gross, fee and net per line, checked to add up."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.money import Money
from reconciliation.importers import ImportRejectedError, ProfileSet, read_import
from reconciliation.lines import SettlementAmounts, SettlementCategory, SourceKind

STRIPE_HEADER = (
    "automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created_utc,created,"
    "available_on_utc,available_on,currency,gross,fee,net,reporting_category,source_id,description,"
    "customer_facing_amount,customer_facing_currency,customer_name,payment_intent_id,charge_id,"
    "payment_metadata[etimbre_reference]\n"
)


def test_stripe_payout_reconciliation_report(profiles: ProfileSet) -> None:
    data = (
        STRIPE_HEADER
        + "po_1QxA,2026-11-24 00:00:00,txn_1,2026-11-22 09:14:03,2026-11-22 10:14:03,2026-11-24 00:00:00,"
        "2026-11-24 01:00:00,eur,60.00,1.15,58.85,charge,ch_1,Visa Schengen,60.00,eur,Amina El Idrissi,"
        "pi_1,ch_1,ET-PAY-0001\n"
        + "po_1QxA,2026-11-24 00:00:00,txn_2,2026-11-22 15:40:00,2026-11-22 16:40:00,2026-11-24 00:00:00,"
        "2026-11-24 01:00:00,eur,-60.00,0.00,-60.00,refund,re_1,,60.00,eur,Youssef Benali,pi_2,ch_2,"
        "ET-PAY-0002\n"
        + "po_1QxA,2026-11-24 00:00:00,txn_3,2026-11-22 18:02:00,2026-11-22 19:02:00,2026-11-24 00:00:00,"
        "2026-11-24 01:00:00,eur,-25.00,15.00,-40.00,dispute,dp_1,,25.00,eur,,pi_3,ch_3,ET-PAY-0003\n"
    ).encode()
    lines = read_import(data, profiles.get("settlement-stripe")).lines
    charge, refund, dispute = lines
    assert charge.source is SourceKind.SETTLEMENT
    assert charge.settlement == SettlementAmounts(
        "stripe", SettlementCategory.CAPTURE, Money(6000, "EUR"), Money(115, "EUR"), Money(5885, "EUR")
    )
    assert charge.amount == Money(5885, "EUR")
    assert charge.reference == "ET-PAY-0001"
    assert charge.batch_reference == "po_1QxA"
    assert charge.entry_reference == "txn_1"
    assert charge.booking_date == date(2026, 11, 22)
    assert charge.value_date == date(2026, 11, 24)
    assert refund.amount == Money(-6000, "EUR")
    assert refund.settlement is not None
    assert refund.settlement.category is SettlementCategory.REFUND
    assert dispute.settlement is not None
    assert dispute.settlement.category is SettlementCategory.CHARGEBACK
    assert dispute.amount == Money(-4000, "EUR")


def test_a_net_that_is_not_gross_minus_fee_is_an_error(profiles: ProfileSet) -> None:
    data = (
        STRIPE_HEADER
        + "po_1,x,txn_1,2026-11-22 09:14:03,x,2026-11-24 00:00:00,x,eur,60.00,1.15,58.00,charge"
        + ",,,,,,,,E1\n"
        + "po_1,x,txn_2,2026-11-22 09:14:03,x,2026-11-24 00:00:00,x,eur,60.00,1.15,58.85,payout_fee"
        + ",,,,,,,,E2\n"
    ).encode()
    with pytest.raises(ImportRejectedError) as caught:
        read_import(data, profiles.get("settlement-stripe"))
    messages = [str(error) for error in caught.value.errors]
    assert messages[0] == "line 2, column 'net' (11): 58.00 is not gross 60.00 minus fee 1.15 = 58.85"
    assert messages[1].startswith("line 3, column 'reporting_category' (12): unknown category 'payout_fee'")


def test_cmi_remittance_report_in_windows_1252_without_card_numbers(profiles: ProfileSet) -> None:
    text = (
        "Numéro remise;Date remise;Date transaction;Numéro commande;Numéro autorisation;Numéro carte;Type;"
        "Montant brut;Commission;Montant net\r\n"
        "R-20261122-01;23/11/2026;22/11/2026;ET-PAY-0201;A81234;5412 75** **** 1234;Achat;1 200,00;"
        "12,00;1 188,00\r\n"
        "R-20261122-01;23/11/2026;22/11/2026;ET-PAY-0202;A81299;4111 11** **** 1111;Annulation;-300,00;"
        "0,00;-300,00\r\n"
    )
    lines = read_import(text.encode("cp1252"), profiles.get("settlement-cmi")).lines
    assert [line.amount for line in lines] == [Money(118800, "MAD"), Money(-30000, "MAD")]
    assert lines[0].settlement is not None
    assert lines[0].settlement.fee == Money(1200, "MAD")
    assert lines[0].value_date == date(2026, 11, 23)
    assert lines[1].settlement is not None
    assert lines[1].settlement.category is SettlementCategory.REFUND
    for line in lines:
        assert all(name != "Numéro carte" for name, _ in line.raw)
        assert "**" not in repr(line.raw)


def test_sandbox_settlement_report(profiles: ProfileSet) -> None:
    data = (
        b"settlement_id,movement_id,payment_reference,type,settled_on,currency,gross,fee,net\n"
        b"stl_1,mv_1,ET-PAY-0301,capture,2026-11-22,EUR,40.00,0.80,39.20\n"
        b"stl_1,mv_2,ET-PAY-0302,chargeback,2026-11-22,EUR,-40.00,0.00,-40.00\n"
    )
    lines = read_import(data, profiles.get("settlement-sandbox")).lines
    assert [(line.reference, line.amount) for line in lines] == [
        ("ET-PAY-0301", Money(3920, "EUR")),
        ("ET-PAY-0302", Money(-4000, "EUR")),
    ]
    assert {line.batch_reference for line in lines} == {"stl_1"}
