"""The holiday and break watch: duty rosters before, a zero report every day of it."""
