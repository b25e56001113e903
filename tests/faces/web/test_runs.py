"""A run's page: a trial a search pruned has ended, with its own label, not a live one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from headwater.flows.workspace import Workspace
from headwater.settings import Settings
from headwater.storage.warehouse import catalog as cat
from headwater.storage.warehouse import runs as registry
from tests.builders import write_csv
from tests.faces.api.conftest import AUTH, TOKEN
from tests.faces.web.conftest import Site, _serve

pytestmark = pytest.mark.parametrize("backend", ["duckdb"])

PRUNED = "trial0pruned"
WHY = "pruned at epoch 1: validation accuracy 0.40 below the median 0.60"


@pytest.fixture
def pruned_site(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    """A server over one MLP run that a search stopped after its first epoch."""
    now = datetime.now(UTC)
    with Workspace(settings) as ws:
        ws.ingest(write_csv(tmp_path / "orders.csv", 30), dataset="orders", label="label")
        wh, key = ws.warehouse, cat.get_dataset(ws.warehouse, "orders").key
        registry.create_run(
            wh,
            run_id=PRUNED,
            dataset_key=key,
            model="mlp",
            params={"density": 10},
            seed=0,
            evaluation="holdout",
            code_version="test",
            now=now,
        )
        registry.start_run(wh, PRUNED, now=now)
        epoch = {"epoch": 1, "loss": 1.1, "accuracy": 0.4, "val_loss": 1.2, "val_accuracy": 0.4}
        registry.record_epoch(wh, PRUNED, 1, epoch, now=now)
        registry.update_progress(wh, PRUNED, {"epoch": 1, "epochs": 5})
        registry.finish_run(wh, PRUNED, status="pruned", now=now, error=WHY)
    yield from _serve(settings.model_copy(update={"api_token": SecretStr(TOKEN)}))


def test_a_pruned_trial_shows_as_ended_with_its_own_label(pruned_site: Site) -> None:
    with pruned_site.client() as client:
        page = client.get(f"/ui/runs/{PRUNED}")
        assert page.status_code == 200, page.text
        assert "data-events" not in page.text  # not followed as a live run
        assert 'class="badge pruned"' in page.text and 'id="run-pruned"' in page.text
        assert WHY in page.text and 'id="run-error"' not in page.text
        assert page.text.count('<tr><td class="num">1</td>') == 1  # its one epoch

        events = client.get(f"/ui/runs/{PRUNED}/events", timeout=10)  # ends, never hangs
        assert "event: done" in events.text and '"status": "pruned"' in events.text
        assert client.get(f"/runs/{PRUNED}", headers=AUTH).json()["status"] == "pruned"
