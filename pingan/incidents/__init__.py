"""The incident-report clock: phone and written reports against their deadlines."""
