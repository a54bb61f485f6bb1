"""pymager's Alembic environment; setup.py installs this folder as the package ``pymager._migrations``.

A regular package (not a namespace one) so that ``importlib.resources.files`` gives a plain directory.
"""
