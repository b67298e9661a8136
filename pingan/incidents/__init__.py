"""The incident-report clock (事故报告时限): phone and written reports against their deadlines.

``rules`` (the data file and the pure decisions: deadlines per jurisdiction, follow-up times,
report states), ``service`` (register, record a report, evaluate the clock), ``workflow``
(``CLOCK`` and the scheduling of follow-up runs), ``views`` (timelines and tables).
"""
