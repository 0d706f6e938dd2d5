"""Data policy for the Ampel zones: what a model in a zone may see, and personal data in questions.

Kept free of UI and LLM code so the rules can be reviewed (and tested) on their own.
"""
