"""Use cases (plain typed functions that own their transaction) and the clients they call."""
