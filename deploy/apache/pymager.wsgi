"""mod_wsgi entry point: the pymager application built from one configuration file.

The file is ``$PYMAGER_CONFIG``, else ``/etc/pymager/pymager.ini``. Set ``PYMAGER_CONFIG`` and
``PROMETHEUS_MULTIPROC_DIR`` in Apache's environment (see deploy/apache/README.md): mod_wsgi daemon
processes inherit it, and both must be known before the first import of pymager.
"""

import os

from pymager.bootstrap import make_wsgi_app

application = make_wsgi_app(os.environ.get("PYMAGER_CONFIG", "/etc/pymager/pymager.ini"))
