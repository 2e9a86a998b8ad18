"""Markers shared by the test modules."""

from __future__ import annotations

import pytest
from django.db import connection

#: Tests whose threads write to the database at the same time need a server
#: that lets them: the SQLite test database is in memory with a shared cache,
#: where a writer meeting another's lock fails at once ("database table is
#: locked") instead of waiting. They run in the PostgreSQL pass.
needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs concurrent connections: PostgreSQL")
