"""The e-stamp: ET1 codec (COSE_Sign1), keys and trust list, QR, PDF receipt, offline verifier."""
