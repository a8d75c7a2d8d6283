"""A tenant's data in and out (issue 14): ``memctl export`` (this far), then import and erase."""
