"""Dual prevention (双重预防): the risk-point register and its checks, and the hazard closed loop."""
