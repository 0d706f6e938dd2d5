"""Every German string of the chat portal in one place.

Why: staff read the portal in German, and keeping the wording here (not scattered in
layout code) lets an English table follow later with the same keys, and lets tests
check texts without importing gradio.
"""
from __future__ import annotations

DE: dict[str, str] = {
    # page
    "app_title": "KI-Portal",
    "header": "## KI-Portal der Stadtverwaltung",
    "subheader": "Fragen an die eigenen Dokumente – jede Antwort mit Quellen.",
    "disclaimer": "Antworten können falsch sein – maßgeblich sind die verlinkten Quellen.",
    "signed_in": "Angemeldet als **{name}** ({role})",
    "signed_in_local": "Lokaler Betrieb ohne Anmeldung",
    "logout": "Abmelden",
    "role_staff": "Mitarbeitende",
    "role_trainer": "Trainer/in",
    "role_admin": "Administration",
    "login_message": "Bitte melden Sie sich mit Ihrem Portal-Benutzernamen und Passwort an.",
    # tabs
    "tab_chat": "Chat",
    "tab_admin": "Verwaltung",
    "tab_trainer": "KI-Kompass",
    "tab_training": "Schulung",
    "tab_tools": "Werkzeuge",
    "tab_account": "Mein Konto",
    # sidebar
    "new_chat": "+ Neuer Chat",
    "history_label": "Meine Chats",
    "history_empty": "Noch keine gespeicherten Chats.",
    "history_info": "Zum Öffnen anklicken",
    "delete_chat": "Chat löschen",
    "export_chat": "Als Markdown exportieren",
    "export_chat_docx": "Als Word (DOCX) exportieren",
    "export_file": "Export",
    "settings_heading": "### Einstellungen",
    "model_label": "KI-Modell",
    "model_info": "Grün: alle Daten · Gelb: keine personenbezogenen Daten ohne Bestätigung · Rot: nur Öffentliches",
    # the line under the model's options (ChatHandlers.model_description): only what an option's label
    # (zone, name, operator, location) does not say
    "model_detail": "Freigegeben: {docs}; {pii}.",
    "model_docs_all": "Dokumente jeder Einstufung",
    "model_docs_some": "nur Dokumente der Einstufung {classes}",
    "model_docs_none": "keine Dokumente",
    "model_pii_allow": "personenbezogene Angaben in der Frage",
    "model_pii_warn": "personenbezogene Angaben in der Frage nur nach Ihrer Bestätigung",
    "model_pii_block": "keine personenbezogenen Angaben in der Frage (eine solche Frage wird nicht gesendet)",
    "collections_label": "Sammlungen durchsuchen",
    "collections_info": "Keine Auswahl = alle Sammlungen",
    # chat
    "chat_label": "Unterhaltung",
    "chat_placeholder": "**Stellen Sie eine Frage zu den Dokumenten der Verwaltung.**",
    "input_label": "Ihre Frage",
    "input_placeholder": "Frage eingeben – Enter sendet, Umschalt+Enter für eine neue Zeile",
    "send": "Senden",
    "stop": "Stopp",
    "answer_stopped": "Antwort angehalten – gespeichert wurde nichts. Die Frage steht wieder im Eingabefeld.",
    "confirm_send": "Trotzdem senden",
    "edit_question": "Frage ändern",
    "warn_heading": "**Bitte prüfen Sie Ihre Frage.**",
    "sources": "Quellen",
    "source_text_view": "Stelle im Text markiert",
    "no_sources": "Keine passenden Quellen gefunden.",
    "notice": "Hinweis",
    "answer_pending": "Suche in den Dokumenten …",
    # feedback
    "feedback_heading": "### Rückmeldung zur letzten Antwort",
    "feedback_hint": "Mit den Daumen-Symbolen unter einer Antwort bewerten. Rückmeldungen werden mit Frage, Antwort und Quellen "
                     "für die Qualitätsprüfung gespeichert – auch wenn Sie den Chat später löschen.",
    "feedback_comment": "Kommentar zur Bewertung (freiwillig)",
    "feedback_comment_placeholder": "Was war gut oder falsch?",
    "feedback_save": "Kommentar speichern",
    "feedback_saved": "Danke! Ihre Bewertung wurde gespeichert.",
    "feedback_comment_saved": "Danke! Ihr Kommentar wurde gespeichert.",
    "feedback_none": "Bitte bewerten Sie zuerst eine Antwort (Daumen hoch oder runter).",
    # status / errors
    "chat_deleted": "Der Chat wurde gelöscht.",
    "chat_not_found": "Dieser Chat ist nicht vorhanden.",
    "no_chat": "Es ist noch kein Chat geöffnet.",
    "empty_question": "Bitte geben Sie eine Frage ein.",
    "question_too_long": "Die Frage ist zu lang (höchstens {n} Zeichen).",
    "model_not_allowed": "Dieses Modell steht Ihrer Rolle nicht zur Verfügung.",
    "no_models": "Für Ihre Rolle ist kein KI-Modell freigegeben. Bitte wenden Sie sich an die Administration.",
    "unknown_collection": "Unbekannte Sammlung: {name}",
    "answer_failed": "Die Antwort konnte nicht erzeugt werden. Bitte versuchen Sie es erneut oder wählen Sie "
                     "ein anderes Modell.",
    "policy_blocked": "Die Anfrage wurde nach den Ampel-Regeln nicht gesendet.",
    # export
    "export_title": "Chat",
}

TEXTS: dict[str, dict[str, str]] = {"de": DE}
LANG = "de"


def t(key: str, **values: object) -> str:
    """The text for ``key`` in the portal language, with ``{placeholders}`` filled."""
    text = TEXTS[LANG].get(key) or DE[key]
    return text.format(**values) if values else text
