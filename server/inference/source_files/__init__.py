"""Which files of a folder are the user's Python, and what text each holds.

One set of rules for the trainer's corpus and the server's workspace index, so the server
indexes what training would read: `discovery` (which files: suffixes, skipped folders,
`.gitignore`), `hygiene` (what a file holds: size, encoding, generated code, the
data-science filter) and `notebooks` (a notebook's code cells as Python).
"""
