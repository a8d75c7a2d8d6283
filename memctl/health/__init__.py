"""``memctl stats``: one read-only health report for a person and for a monitor (issue 15)."""
