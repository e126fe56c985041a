"""The database: the only package that speaks SQL (aiosqlite). It returns bot.core models, never rows."""
