"""The pure resolution core: codes, vocabularies and precedence. Standard library only."""
