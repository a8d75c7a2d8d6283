"""Connections and the server: engines (URL, codecs), the embedded PostgreSQL, scratch databases,
advisory locks, who blocks whom, INVALID-index repair, and names from the command line.

Import from the modules (``memctl.db.engine`` ...): this package imports nothing itself.
"""
