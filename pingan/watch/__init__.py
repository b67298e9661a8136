"""The holiday and break watch: duty rosters before, a zero report every day of it.

``rules`` (the data file and the pure decisions: periods, deadlines, roster entries, states),
``service`` (periods, planning, filing rosters and reports), ``workflow`` (``WATCH``: plan →
remind → escalate), ``views`` (the board of who has reported).
"""
