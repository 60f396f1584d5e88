"""Pure cryptography library: no Flask, no database, no import of ours."""
