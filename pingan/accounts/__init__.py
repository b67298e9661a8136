"""Reviewers' accounts: persons of the organisation who review evidence (the safety section, the
leader in charge of safety, 包保/分管 leaders for their units), their argon2 passwords, the
throttle on failed sign-ins, and server-side sessions. ``rules`` decides, ``service`` stores."""
