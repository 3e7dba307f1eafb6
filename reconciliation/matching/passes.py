"""The set-based passes: earlier decisions, exact references, aggregates and reversal pairs, one SQL each.

Every pass sees only what the passes before it left: an item is free while it is in no match, held by
no exception, and not reconciled by the latest run of another day (`taken`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from reconciliation.matching.sink import ExceptionSink, Found
from reconciliation.matching.work import CAND, EXPORT, INSERT_MATCH, LEDGER, MATCH, RESOLVED, Work

# Which export lines may stand for which ledger entries, by reference: a treasury line for any payment
# event (the amount's sign tells them apart), a settlement report line for the event of its category.
COMPATIBLE = """(
    (x.src = 'treasury' AND l.cls <> 'settlement')
    OR (x.src = 'settlement' AND (
        (x.cls = 'capture' AND l.cls = 'capture') OR (x.cls = 'refund' AND l.cls = 'refund')
        OR (x.cls = 'chargeback' AND l.cls = 'chargeback')
        OR (x.cls = 'chargeback_reversal' AND l.cls = 'reversal')))
)"""


@dataclass(frozen=True, slots=True)
class ReferenceRule:
    """Pairs found by equal keys on both sides, equal amounts and currencies, close enough in time."""

    name: str
    x_where: str
    l_where: str
    x_key: str
    l_key: str
    with_details: bool = False  # a batch line matched whole brings its details into the match
    needs: tuple[str, ...] = ()  # facts of the run's sides without which the rule has nothing to pair


REFERENCE_RULES = (
    ReferenceRule(
        "reference",
        "x.src = 'treasury' AND x.parent IS NULL AND x.is_batch = 0 AND x.reference <> ''",
        "l.payment_ref <> '' AND l.cls <> 'settlement'",
        "reference",
        "payment_ref",
        needs=("export:treasury",),
    ),
    ReferenceRule(
        "report-reference",
        "x.src = 'settlement' AND x.reference <> '' AND x.cls IN "
        "('capture', 'refund', 'chargeback', 'chargeback_reversal')",
        "l.payment_ref <> '' AND l.cls IN ('capture', 'refund', 'chargeback', 'reversal')",
        "reference",
        "payment_ref",
        needs=("export:settlement",),
    ),
    ReferenceRule(
        "payout-reference",
        "x.src = 'treasury' AND x.parent IS NULL AND x.batch_key <> ''",
        "l.cls = 'settlement' AND l.settlement_ref <> ''",
        "batch_key",
        "settlement_ref",
        with_details=True,
        needs=("ledger:settlement",),
    ),
    ReferenceRule(
        "import-line",
        "x.parent IS NULL",
        "l.import_line_ref <> ''",
        "line_key",
        "import_line_ref",
        with_details=True,
        needs=("ledger:import_line",),
    ),
)
BATCH_DETAIL_RULE = ReferenceRule(
    "batch-detail",
    "x.parent IS NOT NULL AND x.reference <> ''",
    "l.payment_ref <> '' AND l.cls <> 'settlement'",
    "reference",
    "payment_ref",
)


# Pass 0: what is settled already ---------------------------------------------------------------------


def latest_other_runs(work: Work, business_day: str, scope: str) -> list[int]:
    """The latest run of every other (day, scope): its matches are final unless that day is run again."""
    rows = work.run(
        """
        SELECT max(id) FROM recon_runs WHERE NOT (business_day = :day AND scope = :scope)
         GROUP BY business_day, scope ORDER BY 1
        """,
        {"day": business_day, "scope": scope},
    )
    return [int(row[0]) for row in rows]


def take_reconciled_elsewhere(work: Work, runs: Sequence[int]) -> int:
    """Items another day's latest run matched: not candidates here; this day's own are recorded as such."""
    if not runs:
        return 0
    listed = ", ".join(str(int(r)) for r in runs)
    work.run(f"""
        UPDATE {LEDGER} SET taken = 1 WHERE EXISTS (
            SELECT 1 FROM recon_matches m WHERE m.entry_id = {LEDGER}.entry_id AND m.run_id IN ({listed}))
    """)
    work.run(f"""
        UPDATE {EXPORT} SET taken = 1 WHERE EXISTS (
            SELECT 1 FROM recon_matches m
             WHERE m.import_id = {EXPORT}.import_id AND m.item_no = {EXPORT}.item_no
               AND m.run_id IN ({listed}))
    """)
    base = work.next_match_no()
    count = work.run(f"""
        {INSERT_MATCH}
        SELECT {base} + row_number() OVER (ORDER BY t.side, t.item), 1, 'resolved', 'other-run', t.li, t.xi,
               t.currency, t.ledger_amount, t.export_amount
          FROM (
            SELECT 0 AS side, item, item AS li, NULL AS xi, currency, cash AS ledger_amount,
                   NULL AS export_amount
              FROM {LEDGER} WHERE taken = 1 AND in_day = 1
            UNION ALL
            SELECT 1, item, NULL, item, currency, NULL, amt FROM {EXPORT} WHERE taken = 1
          ) t
    """).rowcount
    return int(count or 0)


def apply_resolutions(work: Work) -> list[tuple[int, str]]:
    """Auditors' decisions stand: items they matched by hand or posted are settled, as those groups.

    Returns the (resolution id, action) pairs that touched this run, for its input hash.
    """
    rows = work.run("""
        SELECT r.id, r.action, e.entry_id, e.import_id, e.item_no,
               r.matched_entry_id, r.matched_import_id, r.matched_item_no
          FROM recon_resolutions r JOIN recon_exceptions e ON e.id = r.exception_id
         WHERE r.action IN ('match', 'post')
           AND (r.status = 'done' OR EXISTS (
                SELECT 1 FROM recon_resolutions d WHERE d.decides_id = r.id AND d.action = 'approve'))
         ORDER BY r.id
    """).all()
    if not rows:
        return []
    uuid_type = "uuid" if work.postgres else "BLOB"
    suffix = " ON COMMIT DROP" if work.postgres else ""
    work.run(f"DROP TABLE IF EXISTS {RESOLVED}")
    work.run(
        f"CREATE TEMP TABLE {RESOLVED} (res_id integer, action text, entry_id {uuid_type}, "
        f"import_id integer, item_no integer){suffix}"
    )
    members: list[dict[str, Any]] = []
    for res_id, action, entry_id, import_id, item_no, m_entry, m_import, m_item in rows:
        for entry, imported, item in ((entry_id, import_id, item_no), (m_entry, m_import, m_item)):
            if entry is not None or imported is not None:
                members.append(
                    {
                        "res_id": res_id,
                        "action": action,
                        "entry_id": entry,
                        "import_id": imported,
                        "item_no": item,
                    }
                )
    work.session.execute(
        text(
            f"INSERT INTO {RESOLVED} (res_id, action, entry_id, import_id, item_no) "
            "VALUES (:res_id, :action, :entry_id, :import_id, :item_no)"
        ),
        members,
    )
    found = work.run(f"""
        SELECT r.res_id, r.action, l.item, x.item FROM {RESOLVED} r
          LEFT JOIN {LEDGER} l ON l.entry_id = r.entry_id
          LEFT JOIN {EXPORT} x ON x.import_id = r.import_id AND x.item_no = r.item_no
         WHERE l.item IS NOT NULL OR x.item IS NOT NULL
         ORDER BY r.res_id, l.item, x.item
    """).all()
    groups: dict[int, list[tuple[str, int | None, int | None]]] = {}
    for res_id, action, li, xi in found:
        groups.setdefault(int(res_id), []).append((str(action), li, xi))
    base = work.next_match_no()
    inserts: list[dict[str, Any]] = []
    seen_li: set[int] = set()
    seen_xi: set[int] = set()
    for number, (_, members_of) in enumerate(sorted(groups.items()), start=base + 1):
        member_no = 0
        for action, li, xi in members_of:
            if (li is not None and li in seen_li) or (xi is not None and xi in seen_xi):
                continue
            member_no += 1
            seen_li.update([li] if li is not None else [])
            seen_xi.update([xi] if xi is not None else [])
            inserts.append(
                {
                    "match_no": number,
                    "member_no": member_no,
                    "rule": "manual" if action == "match" else "posted",
                    "li": li,
                    "xi": xi,
                }
            )
    if inserts:
        work.session.execute(
            text(f"""
                {INSERT_MATCH}
                SELECT :match_no, :member_no, 'resolved', :rule, :li, :xi,
                       coalesce((SELECT currency FROM {LEDGER} WHERE item = :li),
                                (SELECT currency FROM {EXPORT} WHERE item = :xi)),
                       (SELECT cash FROM {LEDGER} WHERE item = :li),
                       (SELECT amt FROM {EXPORT} WHERE item = :xi)
            """),
            inserts,
        )
    return [(int(res_id), str(action)) for res_id, action, *_ in rows if int(res_id) in groups]


# Pass 1 and the batch details of pass 2: pairs by reference -----------------------------------------------


def _pairs(work: Work, rule: ReferenceRule) -> str:
    """SQL of a reference rule's pairs (xi, li, currency, cash, amt): equal key, currency and amount.

    Several items with the same key and amount on a side (a line sent twice, a payment posted twice) are
    paired in order of closeness to the business day, then of position: the first with the first; the
    rest stay free and are found to be duplicates. Pairs further apart than the window stay free too.
    """
    day = work.day.number
    return f"""
        SELECT x.item AS xi, l.item AS li, x.currency, l.cash, x.amt, l.entry_id, x.import_id, x.item_no
          FROM (SELECT x.item, x.{rule.x_key} AS k1, x.currency, x.amt, x.day, x.import_id, x.item_no,
                       row_number() OVER (PARTITION BY x.{rule.x_key}, x.currency, x.amt
                                          ORDER BY abs(x.day - {day}), x.item) AS k
                  FROM {EXPORT} x WHERE {rule.x_where} AND {work.free("x", "xi")}) x
          JOIN (SELECT l.item, l.{rule.l_key} AS k1, l.currency, l.cash, l.day, l.entry_id,
                       row_number() OVER (PARTITION BY l.{rule.l_key}, l.currency, l.cash
                                          ORDER BY abs(l.day - {day}), l.item) AS k
                  FROM {LEDGER} l WHERE {rule.l_where} AND {work.free("l", "li")}) l
            ON l.k1 = x.k1 AND l.currency = x.currency AND l.cash = x.amt AND l.k = x.k
         WHERE abs(x.day - l.day) <= {int(work.window_days)}
    """


def stage_pairs(work: Work, rule: ReferenceRule) -> int:
    """A rule's pairs into the staging table, for passes that judge them together (batch details)."""
    work.run(f"DELETE FROM {CAND}")
    inserted = work.run(
        f"INSERT INTO {CAND} (xi, li, rule) SELECT z.xi, z.li, :rule FROM ({_pairs(work, rule)}) z",
        {"rule": rule.name},
    )
    return int(inserted.rowcount or 0)


def match_pairs(work: Work, rule: ReferenceRule, pass_: str) -> int:
    """A rule's pairs straight into the matches, one match each (numbered by their line: no sort), with
    the ids the record needs, so that recording a million matches joins nothing."""
    base = work.next_match_no()
    inserted = work.run(
        f"""
        INSERT INTO {MATCH} (match_no, member_no, pass, rule, li, xi, currency, ledger_amount, export_amount,
                             entry_id, import_id, item_no)
        SELECT {base} + z.xi, 1, :pass, :rule, z.li, z.xi, z.currency, z.cash, z.amt, z.entry_id, z.import_id,
               z.item_no
          FROM ({_pairs(work, rule)}) z
        """,
        {"pass": pass_, "rule": rule.name},
    )
    return int(inserted.rowcount or 0)


def confirm_staged(work: Work, pass_: str, rule: str) -> int:
    """Each staged pair becomes a match of its own."""
    base = work.next_match_no()
    count = work.run(
        f"""
        {INSERT_MATCH}
        SELECT {base} + row_number() OVER (ORDER BY c.xi), 1, :pass, :rule, c.li, c.xi, x.currency, l.cash,
               x.amt
          FROM {CAND} c JOIN {EXPORT} x ON x.item = c.xi JOIN {LEDGER} l ON l.item = c.li
        """,
        {"pass": pass_, "rule": rule},
    ).rowcount
    work.run(f"DELETE FROM {CAND}")
    return int(count or 0)


def attach_details(work: Work, rule: str) -> None:
    """The details of batch lines matched whole under `rule` join their line's match."""
    work.run(
        f"""
        {INSERT_MATCH}
        SELECT m.match_no, 1 + row_number() OVER (PARTITION BY m.match_no ORDER BY d.item), m.pass, m.rule,
               NULL, d.item, d.currency, NULL, d.amt
          FROM {MATCH} m JOIN {EXPORT} d ON d.parent = m.xi
         WHERE m.rule = :rule AND m.member_no = 1
        """,
        {"rule": rule},
    )


def exact_pass(work: Work, facts: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rule in REFERENCE_RULES:
        if not all(fact in facts for fact in rule.needs):
            continue
        counts[rule.name] = match_pairs(work, rule, "exact")
        if rule.with_details and counts[rule.name]:
            attach_details(work, rule.name)
    work.index_matches()
    work.narrow()
    return counts


# Pass 2: aggregates ----------------------------------------------------------------------------------------


def batch_pass(work: Work, facts: set[str]) -> dict[str, int]:
    """A bank's batch entry (several transaction details) matches when every detail matches a ledger
    entry by reference and amount: one match for the entry and all its details. Details of a batch
    that is not wholly explained still match one by one."""
    if "export:batch" not in facts:
        return {}
    stage_pairs(work, BATCH_DETAIL_RULE)
    base = work.next_match_no()
    complete = f"""
        SELECT d.parent FROM {EXPORT} d LEFT JOIN {CAND} c ON c.xi = d.item
         WHERE d.parent IS NOT NULL
         GROUP BY d.parent HAVING count(c.xi) = count(*)
    """
    batches = work.run(f"""
        {INSERT_MATCH}
        SELECT {base} + row_number() OVER (ORDER BY p.item), 1, 'aggregate', 'batch', NULL, p.item,
               p.currency, NULL, p.amt
          FROM {EXPORT} p WHERE p.item IN ({complete}) AND {work.free("p", "xi")}
    """).rowcount
    work.run(f"""
        {INSERT_MATCH}
        SELECT m.match_no, 1 + row_number() OVER (PARTITION BY m.match_no ORDER BY d.item),
               'aggregate', 'batch',
               c.li, d.item, d.currency, l.cash, d.amt
          FROM {MATCH} m JOIN {EXPORT} d ON d.parent = m.xi JOIN {CAND} c ON c.xi = d.item
          JOIN {LEDGER} l ON l.item = c.li
         WHERE m.rule = 'batch' AND m.member_no = 1
    """)
    work.run(f"DELETE FROM {CAND} WHERE xi IN (SELECT xi FROM {MATCH} WHERE xi IS NOT NULL)")
    details = confirm_staged(work, "aggregate", "batch-detail")
    return {"batch": int(batches or 0), "batch-detail": details}


def payout_pass(work: Work, sink: ExceptionSink, facts: set[str]) -> dict[str, int]:
    """A payout on the treasury account against the acquirer's settlement report: its amount is the
    report's net for that payout (captures - refunds - chargebacks - fees). With a ledger settlement
    entry already matched to the payout, the report's fees must equal the fees the entry booked."""
    if "export:settlement" not in facts:
        return {}
    report = f"""
        SELECT s.batch_reference AS payout, s.currency, sum(s.amount) AS net, sum(coalesce(s.fee, 0)) AS fee,
               count(*) AS lines
          FROM {EXPORT} s WHERE s.src = 'settlement' AND s.batch_reference <> ''
         GROUP BY s.batch_reference, s.currency
    """
    leftover_fees = f"""
        SELECT s.item, s.batch_reference, s.currency, s.import_id, s.item_no FROM {EXPORT} s
         WHERE s.src = 'settlement'
           AND s.cls NOT IN ('capture', 'refund', 'chargeback', 'chargeback_reversal')
           AND {work.free("s", "xi")}
    """
    payouts = work.run(f"""
        SELECT x.item, x.amount, x.currency, x.batch_key, x.import_id, x.item_no, r.net, r.fee, r.lines
          FROM (SELECT x.*, row_number() OVER (PARTITION BY x.batch_key, x.currency ORDER BY x.item) AS k
                  FROM {EXPORT} x
                 WHERE x.src = 'treasury' AND x.parent IS NULL AND x.batch_key <> ''
                   AND {work.free("x", "xi")}) x
          JOIN ({report}) r ON r.payout = x.batch_key AND r.currency = x.currency
         WHERE x.k = 1
         ORDER BY x.item
    """).all()
    fees = work.run(leftover_fees + " ORDER BY s.item").all()
    fee_lines: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for item, payout, currency, import_id, item_no in fees:
        fee_lines.setdefault((str(payout), str(currency)), []).append(
            (int(item), int(import_id), int(item_no))
        )
    matched = 0
    base = work.next_match_no()
    rows: list[dict[str, Any]] = []
    for item, amount, currency, payout, import_id, item_no, net, fee, lines in payouts:
        members = fee_lines.get((str(payout), str(currency)), [])
        if int(net) == int(amount):
            matched += 1
            number = base + matched
            rows.append({"m": number, "n": 1, "xi": item, "cur": currency, "amt": amount})
            rows.extend(
                {"m": number, "n": k, "xi": fee_item, "cur": currency, "amt": None}
                for k, (fee_item, _, _) in enumerate(members, start=2)
            )
            continue
        sink.add(
            Found(
                "amount_mismatch",
                str(currency),
                xi=int(item),
                import_id=int(import_id),
                item_no=int(item_no),
                ledger_amount=int(net),
                export_amount=int(amount),
                reference=str(payout),
                cash_role="treasury",
                detail={
                    "message": f"payout {payout}: the treasury received {amount} minor units, the settlement "
                    f"report's net for it is {net} ({lines} line(s), fees {fee})",
                    "report_net": int(net),
                    "report_fee": int(fee),
                },
                also_xi=tuple(m[0] for m in members),
                also_lines=tuple((m[1], m[2]) for m in members),
            )
        )
    if rows:
        work.session.execute(
            text(f"""
                {INSERT_MATCH}
                VALUES (:m, :n, 'aggregate', 'payout', NULL, :xi, :cur, NULL,
                        coalesce(:amt, (SELECT amt FROM {EXPORT} WHERE item = :xi)))
            """),
            rows,
        )
    fee_checks = _ledger_payout_fees(work, sink, report, fee_lines)
    sink.flush()
    return {"payout": matched, "payout-fees": fee_checks}


def _ledger_payout_fees(
    work: Work, sink: ExceptionSink, report: str, fee_lines: dict[tuple[str, str], list[tuple[int, int, int]]]
) -> int:
    checked = work.run(f"""
        SELECT m.match_no, l.item, l.entry_id, l.fee, l.currency, l.settlement_ref, l.provider, l.consulate,
               r.fee, (SELECT coalesce(max(member_no), 0) FROM {MATCH} mm WHERE mm.match_no = m.match_no)
          FROM {MATCH} m JOIN {LEDGER} l ON l.item = m.li
          JOIN ({report}) r ON r.payout = l.settlement_ref AND r.currency = l.currency
         WHERE m.rule = 'payout-reference'
         ORDER BY m.match_no
    """).all()
    rows: list[dict[str, Any]] = []
    for (
        match_no,
        _,
        entry_id,
        ledger_fee,
        currency,
        payout,
        provider,
        consulate,
        report_fee,
        last,
    ) in checked:
        members = fee_lines.get((str(payout), str(currency)), [])
        if int(ledger_fee) == int(report_fee):
            rows.extend(
                {"m": match_no, "n": int(last) + k, "xi": item, "cur": currency}
                for k, (item, _, _) in enumerate(members, start=1)
            )
            continue
        sink.add(
            Found(
                "amount_mismatch",
                str(currency),
                li=None,
                entry_id=work.as_uuid(entry_id),
                ledger_amount=int(ledger_fee),
                export_amount=int(report_fee),
                reference=str(payout),
                cash_role="clearing",
                provider=str(provider),
                consulate=str(consulate),
                detail={
                    "message": f"payout {payout}: the ledger's settlement entry books {ledger_fee} minor "
                    f"units of acquirer fees, the settlement report charges {report_fee}",
                },
                also_xi=tuple(m[0] for m in members),
                also_lines=tuple((m[1], m[2]) for m in members),
            )
        )
    if rows:
        work.session.execute(
            text(f"""
                {INSERT_MATCH}
                SELECT :m, :n, 'aggregate', 'payout-fees', NULL, :xi, :cur, NULL, amt
                  FROM {EXPORT} WHERE item = :xi
            """),
            rows,
        )
    return len(rows)


# Pass 4 helper and pass 5 -------------------------------------------------------------------------------


def tolerance_candidates(work: Work, tolerances: dict[str, int]) -> list[Any]:
    """Pairs by reference whose amounts differ by no more than the currency's tolerance, each reference
    unique among the free items on both sides."""
    if not any(tolerances.values()):
        return []
    cases = " ".join(f"WHEN '{c}' THEN {int(t)}" for c, t in sorted(tolerances.items()) if c.isalpha())
    limit = f"CASE x.currency {cases} ELSE 0 END"
    pairs: list[Any] = []
    for key_x, key_l, where in (
        (
            "reference",
            "payment_ref",
            f"x.reference <> '' AND x.parent IS NULL AND x.is_batch = 0 AND {COMPATIBLE}",
        ),
        ("batch_key", "settlement_ref", "x.batch_key <> '' AND x.src = 'treasury' AND l.cls = 'settlement'"),
    ):
        # The pairs first (few: the free items left after the exact passes), their uniqueness after.
        pairs.extend(
            work.run(
                f"""
                WITH p AS MATERIALIZED (
                    SELECT x.item AS xi, l.item AS li, x.amt, l.cash, x.currency, l.entry_id, l.cls,
                           l.treasury, l.provider, l.consulate, l.payment_ref, l.settlement_ref, x.line_key,
                           l.day, x.{key_x} AS kx, l.{key_l} AS kl, x.src
                      FROM {EXPORT} x JOIN {LEDGER} l ON l.{key_l} = x.{key_x} AND l.currency = x.currency
                     WHERE {where} AND {work.free("x", "xi")} AND {work.free("l", "li")}
                       AND x.amt <> l.cash AND (x.amt > 0) = (l.cash > 0)
                       AND abs(x.amt - l.cash) <= {limit} AND abs(x.day - l.day) <= :window
                )
                SELECT p.xi, p.li, p.amt, p.cash, p.currency, p.entry_id, p.cls, p.treasury, p.provider,
                       p.consulate, p.payment_ref, p.settlement_ref, p.line_key, p.day
                  FROM p
                 WHERE (SELECT count(*) FROM {EXPORT} x2
                         WHERE x2.{key_x} = p.kx AND x2.src = p.src AND {work.free("x2", "xi")}) = 1
                   AND (SELECT count(*) FROM {LEDGER} l2
                         WHERE l2.{key_l} = p.kl AND {work.free("l2", "li")}) = 1
                 ORDER BY p.xi
                """,
                {"window": work.window_days},
            ).all()
        )
    return pairs


def reversal_pass(work: Work) -> int:
    """An entry and its reversal, both free and one of them on the business day: nothing is expected
    outside the ledger, so they match each other."""
    pairs = work.run(f"""
        SELECT a.item, b.item, a.currency, a.cash, b.cash FROM {LEDGER} a
          JOIN {LEDGER} b ON b.reverses_id = a.entry_id AND b.currency = a.currency
         WHERE (a.in_day = 1 OR b.in_day = 1) AND {work.free("a", "li")} AND {work.free("b", "li")}
         ORDER BY a.item
    """).all()
    base = work.next_match_no()
    rows = []
    for number, (first, second, currency, cash_a, cash_b) in enumerate(pairs, start=base + 1):
        rows.append({"m": number, "n": 1, "li": first, "cur": currency, "amt": cash_a})
        rows.append({"m": number, "n": 2, "li": second, "cur": currency, "amt": cash_b})
    if rows:
        work.session.execute(
            text(f"""
                {INSERT_MATCH}
                VALUES (:m, :n, 'ledger', 'reversal-pair', :li, NULL, :cur, :amt, NULL)
            """),
            rows,
        )
    return len(pairs)
