"""Small pure helpers with no Flask or database imports: each can be tested in isolation."""
