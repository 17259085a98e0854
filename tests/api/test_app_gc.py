"""The running app keeps what it started with out of the garbage collector's full walks."""

from __future__ import annotations

import gc

from bourse.api.app import create_app


async def test_startup_objects_are_frozen_while_the_app_runs(container):
    app = create_app(container, dispose_on_shutdown=False)
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        # The modules, the app and the container: far more than a handful of objects.
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
