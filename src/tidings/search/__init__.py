"""Message and user search, shared by chat and account (which query it) and the index job (which writes it): the
documents, their queries and the ports in ``model`` (a stored message as a document: ``documents``), and the
adapters: OpenSearch (``opensearch``) and SQLite FTS5
for the embedded mode (``fts5``). ``bootstrap.Infra`` chooses one by ``search.kind``."""
