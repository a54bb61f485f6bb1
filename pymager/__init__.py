"""pymager: a RESTful image storage service with a database-backed registry of derived images."""

__version__ = "1.0.0"
