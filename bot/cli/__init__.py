"""The command line: argument parsing, commands, terminal rendering, the demo."""
