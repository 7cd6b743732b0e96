"""landrelease: hazardous areas, land release and Article 5 progress for mine action."""
