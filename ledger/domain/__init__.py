"""The pure domain: consulates, the fee schedule, the chart of accounts, entries and postings."""
