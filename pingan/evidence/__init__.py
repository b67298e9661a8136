"""What people hand in for a task: files checked and stored by SHA-256, versions, review."""
