"""The organisation: units, persons, roles and channels; who carries a duty and who answers for whom; import, export and the demo."""
