"""Inference core: model loading, prompt building, decoding and the completion engine.

Imported by the language server, the trainer and the evaluation; imports none of them.
"""
