"""The built-in scheduler plugins, one module per plugin (Kubernetes names).

They are registered like any third-party plugin: entry points in group
``kcore.scheduler`` in kcore's ``pyproject.toml``. Nothing imports them by name.
"""
