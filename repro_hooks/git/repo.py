"""`Git`: one repository, with every kind of question the policy asks of it."""

from __future__ import annotations

from repro_hooks.git.history import HistoryQueries
from repro_hooks.git.index import IndexQueries
from repro_hooks.git.objects import ObjectQueries


class Git(IndexQueries, ObjectQueries, HistoryQueries):
    """One repository (a work tree, or a bare repository on the server)."""
