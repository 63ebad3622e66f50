"""keel's offline tooling: ``keel preview`` and friends (see ``keel --help``)."""

#: keel's exit codes: ok; the program, a policy or the pack failed; the user's input is wrong (``keel --help``).
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
