"""The duty catalog and the duty cycle: pure rules, planning, reminders and escalation, sensitive periods, the state of tasks."""
