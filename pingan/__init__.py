"""pingan: recurring school-safety duties as Prefect workflows."""
