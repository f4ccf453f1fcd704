"""The command line: parse arguments, call the engine, render. No business logic here."""
