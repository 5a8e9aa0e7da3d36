"""Data pipeline: discovery -> hygiene -> filter -> scrub -> dedup -> split -> pack.

Training and evaluation both read files through it, so evaluation sees exactly the files
training saw, and never a training file in its valid split.
"""
