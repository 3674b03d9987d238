"""What the tests share besides fixtures: the test servers, the record builders, the CLI runner.

Importable as ``helpers`` because pytest puts ``tests/`` on ``sys.path`` (``pythonpath`` in
pyproject.toml). Test modules import from here, never from one another.

- :mod:`helpers.openai_server`: a fault-injecting OpenAI-compatible server on 127.0.0.1.
- :mod:`helpers.openai_batch_server`: the same plus the Files and Batches endpoints.
- :mod:`helpers.report_data`: comparisons of known content for the report tests.
- :mod:`helpers.cli`: the ``llmcompare`` command run in a subprocess.
"""
