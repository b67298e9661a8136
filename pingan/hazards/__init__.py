"""Dual prevention (双重预防): the risk-point register and its checks, and the hazard closed loop.

``rules`` — hazards.yaml and the pure decisions (deadlines, states, escalation steps);
``service`` — the loop's actions, platform uploads, risk checks and the register import;
``workflow`` — the daily hazard watch (advance → remind → escalate);
``views`` — rows, tallies and the summary people read; ``sheets`` — the register workbook.
"""
