"""Reconciliation: importers, matcher, runs, reports and exceptions."""
