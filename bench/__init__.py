"""pingan's benchmark: province-scale busy days against floors measured in the same run (see README.md)."""
