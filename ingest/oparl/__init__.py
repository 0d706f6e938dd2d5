"""Import from council information systems (Ratsinformationssysteme) through OParl 1.1.

``client`` speaks HTTP (polite, distrustful), ``model`` turns OParl objects into citation
titles and metadata (pure), ``state`` remembers what was imported (app database),
``sync`` runs an import through the normal ingest pipeline.
"""
