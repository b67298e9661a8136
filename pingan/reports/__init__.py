"""Compliance reports for the annual assessment, and the digests that summarise them."""
