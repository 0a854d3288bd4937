"""The archiver: history of Tango attributes and lab messages in SQLite or PostgreSQL."""
