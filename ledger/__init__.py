"""eTimbre ledger: the double-entry core and the service around it."""
