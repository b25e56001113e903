"""``/runs``, the leaderboard and aliases: training submitted over HTTP and read back."""

from __future__ import annotations

import pytest

from tests.faces.api.conftest import AUTH, FAST_MLP, Trained, train_run, wait_for_run


def test_a_run_is_accepted_at_once_and_reports_progress_then_metrics(trained: Trained) -> None:
    client = trained.api.client
    submitted = client.post("/runs", json={"dataset": "mnist", **FAST_MLP, "seed": 1}, headers=AUTH)
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["run_id"]
    assert submitted.json()["status"] == "queued"
    assert submitted.headers["location"] == f"/runs/{run_id}"
    detail = wait_for_run(client, run_id)
    assert detail["status"] == "succeeded", detail
    assert detail["progress"]["epoch"] == detail["progress"]["epochs"] == 2
    assert detail["progress"]["loss"] > 0 and 0 <= detail["progress"]["accuracy"] <= 1
    assert 0 <= detail["metrics"]["test_accuracy"] <= 1
    assert [e["epoch"] for e in detail["epochs"]] == [1, 2]
    assert {d["role"] for d in detail["data"]} == {"train", "validation", "test"}
    assert set(detail["plots"]) >= {"confusion_matrix.png", "learning_curves.png"}
    for url in detail["plots"].values():
        plot = client.get(url)
        assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
        assert plot.content.startswith(b"\x89PNG")
    assert str(trained.api.settings.home) not in client.get(f"/runs/{run_id}").text
    latest = client.post(
        "/models/latest/predict", params={"dataset": "mnist"}, json={"pixels": [[0] * 784]}
    )
    assert latest.json()["run_id"] == run_id  # a run this process finished is served at once


def test_runs_are_listed_per_dataset(trained: Trained) -> None:
    client = trained.api.client
    everything = client.get("/runs").json()["runs"]
    assert {trained.image_run, trained.table_run} <= {r["run_id"] for r in everything}
    mnist = client.get("/runs", params={"dataset": "mnist"}).json()["runs"]
    assert trained.image_run in {r["run_id"] for r in mnist}
    assert {r["dataset"] for r in mnist} == {"mnist"}
    assert all(r["url"] == f"/runs/{r['run_id']}" for r in mnist)
    missing = client.get("/runs", params={"dataset": "nothing_here"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/runs/000000000000",
        "/runs/000000000000/plots/confusion_matrix.png",
        "/runs/{run}/plots/weights.png",  # a file of the run, but not a registered PNG
        "/runs/{run}/plots/params.png",
        "/runs/{run}/plots/nothing.png",
    ],
)
def test_unknown_runs_and_plots_are_404(trained: Trained, path: str) -> None:
    answer = trained.api.client.get(path.format(run=trained.image_run))
    assert answer.status_code == 404, answer.text
    assert answer.json()["status"] == 404


@pytest.mark.parametrize(
    "path",
    [
        "/runs/{run}/plots/..%2F..%2Fparams.json.png",
        "/runs/{run}/plots/%2Fetc%2Fpasswd.png",
        "/runs/{run}/plots/Confusion_Matrix.png",
        "/runs/{run}/plots/confusion_matrix.svg",
        "/runs/..%2F..%2Fetc/plots/confusion_matrix.png",
    ],
)
def test_plot_names_cannot_reach_other_files(trained: Trained, path: str) -> None:
    answer = trained.api.client.get(path.format(run=trained.image_run))
    assert answer.status_code in {404, 422}, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"dataset": "mnist", "model": "transformer"}, 422, "unknown model"),
        ({"dataset": "nothing_here"}, 404, "does not exist"),
        ({"dataset": "mnist", "epochs": 0}, 422, "epochs"),
        ({"dataset": "mnist", "dropout": 1.0}, 422, "dropout"),
        ({"dataset": "mnist", "cv": 3, "holdout": 0.2}, 422, "give cv or holdout, not both"),
        ({"dataset": "mnist", "seed": True}, 422, "boolean"),
        ({"dataset": "mnist", "width": 3}, 422, "width"),
        ({"dataset": "orders", "model": "logistic", "density": 3}, 422, "density"),
        ({"dataset": "Bad Name"}, 422, "dataset"),
    ],
)
def test_bad_run_requests_are_refused_before_queueing(
    trained: Trained, body: dict[str, object], status: int, says: str
) -> None:
    client = trained.api.client
    before = len(client.get("/runs").json()["runs"])
    refused = client.post("/runs", json=body, headers=AUTH)
    assert refused.status_code == status, refused.text
    assert says in refused.json()["detail"]
    assert len(client.get("/runs").json()["runs"]) == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Basic x"}],
    ids=["missing", "wrong", "basic"],
)
def test_training_and_aliases_need_the_token(trained: Trained, headers: dict[str, str]) -> None:
    client = trained.api.client
    before = client.get("/runs").json()["runs"]
    run = client.post("/runs", json={"dataset": "mnist", **FAST_MLP}, headers=headers)
    alias = client.put(
        "/datasets/mnist/aliases/best", json={"run_id": trained.image_run}, headers=headers
    )
    for refused in (run, alias):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/runs").json()["runs"] == before


def test_leaderboard_ranks_finished_runs(trained: Trained) -> None:
    client = trained.api.client
    board = client.get("/datasets/mnist/leaderboard").json()
    assert board["metric"] == "test_accuracy"
    scores = [r["score"] for r in board["runs"]]
    assert scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in board["runs"]] == list(range(1, len(scores) + 1))
    assert {r["status"] for r in board["runs"]} == {"succeeded"}
    by_f1 = client.get("/datasets/orders/leaderboard", params={"metric": "test_macro_f1"}).json()
    assert trained.table_run in [r["run_id"] for r in by_f1["runs"]]
    assert client.get("/datasets/mnist/leaderboard", params={"metric": "loss"}).status_code == 422
    assert client.get("/datasets/nothing_here/leaderboard").status_code == 404


def test_an_alias_pins_the_served_run(trained: Trained) -> None:
    client = trained.api.client
    other = train_run(client, dataset="mnist", model="logistic")["run_id"]
    image = {"pixels": [[0] * 784]}
    for pinned in (other, trained.image_run):
        done = client.put("/datasets/mnist/aliases/best", json={"run_id": pinned}, headers=AUTH)
        assert done.status_code == 200, done.text
        assert done.json() == {"dataset": "mnist", "alias": "best", "run_id": pinned}
        served = client.post("/models/best/predict", params={"dataset": "mnist"}, json=image)
        assert served.json()["run_id"] == pinned  # switched without a restart


@pytest.mark.parametrize(
    ("alias", "run", "status"),
    [
        ("best", "{table}", 422),  # a run of another dataset
        ("best", "000000000000", 404),
        ("prod", "{image}", 422),
        ("best", "../../x", 422),
    ],
)
def test_bad_aliases_are_refused(trained: Trained, alias: str, run: str, status: int) -> None:
    run_id = run.format(table=trained.table_run, image=trained.image_run)
    refused = trained.api.client.put(
        f"/datasets/mnist/aliases/{alias}", json={"run_id": run_id}, headers=AUTH
    )
    assert refused.status_code == status, refused.text


def test_the_api_speaks_its_own_field_names(trained: Trained) -> None:
    refused = trained.api.client.post(
        "/runs", json={"dataset": "mnist", "cv": 3, "holdout": 0.2}, headers=AUTH
    )
    assert refused.json()["field"].split(".")[-1] == "cv"  # after the model's tag: mlp.cv
    assert "--" not in refused.json()["detail"]


def test_the_schema_says_cv_and_holdout_exclude_each_other(trained: Trained) -> None:
    document = trained.api.client.get("/openapi.json").json()
    bodies = [
        s for name, s in document["components"]["schemas"].items() if name.startswith("RunIn")
    ]
    assert len(bodies) >= 6
    for run_in in bodies:
        assert run_in["not"]["required"] == ["cv", "holdout"]


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PATCH"])
def test_allow_names_every_method_of_the_path(trained: Trained, method: str) -> None:
    answer = trained.api.client.request(method, "/runs")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) >= {"GET", "POST"}


def test_a_body_that_is_not_utf8_is_a_documented_status(trained: Trained) -> None:
    answer = trained.api.client.post(
        "/runs", content=b"\xff\xfe\xfd", headers={**AUTH, "Content-Type": "application/json"}
    )
    documented = trained.api.client.get("/openapi.json").json()["paths"]["/runs"]["post"]
    assert str(answer.status_code) in documented["responses"], answer.text
