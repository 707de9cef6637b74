"""Everything kvmigrate prints: run summaries, plans, verify verdicts and archive inspections (``text.py`` keeps
what came from outside escaped)."""
