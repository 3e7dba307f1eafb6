"""Use cases: each is one unit of work over the database (record a payment, post, reverse, read balances)."""
