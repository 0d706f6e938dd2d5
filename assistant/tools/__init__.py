"""Werkzeuge: plain language, whole-document summaries and drafted letters.

The decisions live in pure modules with table-driven tests – :mod:`.text` (sentences and
words), :mod:`.rules` (the plain-language rule check), :mod:`.facts` (which numbers, dates,
amounts, deadlines and names of the input the output dropped or changed),
:mod:`.readability` (German Flesch after Amstad and the Wiener Sachtextformel, via textstat).
The model-driven tools (:mod:`.simplify`, :mod:`.summarize`, :mod:`.drafts`) are generators of
events (``progress``, ``token``, ``reset``, ``done``) so the portal and the CLI stream the same
thing; :mod:`.service` applies the Ampel exactly as the chat does (via
:class:`assistant.policy_step.PolicyStep`) before any model sees text.
"""
