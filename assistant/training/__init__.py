"""KI-Kompass trainer mode: plans, sessions with anonymous quizzes, comparisons and the
"Blick unter die Haube" view. Pure logic here; the Gradio tab lives in ``ui/trainer_tab.py``."""
