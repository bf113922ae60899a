"""The application: the command line, experiment specs and their wiring, views and the live display."""
