"""Notices become messages: the outbox, the one dispatcher, Apprise transports and message texts."""
