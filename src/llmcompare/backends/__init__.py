"""Built-in backend plugins: ``fake``, ``llama`` and ``chatgpt``.

Each is registered through llmcompare's own ``llmcompare`` entry points, exactly as a third-party
plugin is, and imports its heavy dependencies only when a model is first used.
"""

__all__: list[str] = []  # each backend is its own subpackage, found through entry points
