"""Developer entry points run by the Makefile."""
