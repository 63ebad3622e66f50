"""keel's offline tooling: ``keel preview`` and friends (see ``keel --help``)."""
