"""A soak with nothing lost (``make soak``, ``python -m benchmarks.soak``): two standalone servers on
one PostgreSQL registry and one data directory under a steady mixed load for many minutes, through a
PostgreSQL restart and a SIGKILL of one server, then judged: no 5xx outside the planned outage windows,
memory and file descriptors flat, ``pymager check`` clean, and every byte served what was stored.

A package beside the other load generators rather than a test: it runs for twenty minutes, restarts
the shared PostgreSQL server and judges a whole run, none of which belongs in ``make test``; and it
splits at its seams (the cluster it starts, the pictures it uploads, the ledger of what it stored and
saw, the load, the /proc probes, the verdict), each a module of its own.
"""
