"""Evaluation (评标): expert pool, drawing, committees, scoring rooms, methods, reports, publicity."""
