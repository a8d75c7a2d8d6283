"""verify-schema: read the live catalog (catalog), build the expected one from the models
(reference), diff them into findings (diff), and the checks a diff cannot make (app_role,
citus, integrity); :func:`memctl.schema.verify.verify_schema` runs them all.

Import from the modules: this package imports nothing itself.
"""
