"""``python -m llmcompare``: the same as the ``llmcompare`` command."""

from llmcompare.cli import main

main()
