"""`ghostframe-eval`: next-line completion accuracy on held-out files (cases, predict, score, report)."""
