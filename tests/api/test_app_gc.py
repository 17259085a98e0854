"""The running app keeps what it started with out of the garbage collector's full walks."""

from __future__ import annotations

import gc

from bourse.api.app import YOUNG_GC_THRESHOLD, create_app


async def test_startup_objects_are_frozen_while_the_app_runs(container):
    app = create_app(container, dispose_on_shutdown=False)
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        # The modules, the app and the container: far more than a handful of objects.
        assert gc.get_freeze_count() > 10_000
        # Young collections far less often; the older generations as they were.
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, before[1], before[2])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
