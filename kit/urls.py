"""Every address Atelier hands out, built in one place: the API's resources (`/v1/…`, named as `RunUrls`
names them), the Studio's pages (`…_page`), artifacts, and a run in the Temporal UI. With the settings, the
URLs are absolute at the API's address (results, events, webhooks, the CLI's links); without, they are paths
on this site (the Studio's templates, as `urls`). An id is quoted whole, an artifact key keeps its slashes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from models.api import RunUrls
from models.experiment import EXPERIMENT_PIPELINE
from models.experiment_api import ExperimentUrls
from models.settings import Settings

if TYPE_CHECKING:
    from models.pipelines import PipelineSpec  # it imports the workflows: not loaded for a type


def _id(value: str) -> str:
    return quote(value, safe="")


class Urls:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.base = settings.api_url if settings is not None else ""

    def _at(self, path: str, **query: Any) -> str:
        """`path` at this base, with the query's set parameters (an empty one is kept: the form's own)."""
        shown = {name: value for name, value in query.items() if value is not None}
        return f"{self.base}{path}" + (f"?{urlencode(shown, quote_via=quote)}" if shown else "")

    # --- the API -----------------------------------------------------------------------------------------
    def run(self, run_id: str, resource: str = "", **query: Any) -> str:
        """The run (`/v1/runs/{id}`), or one of its resources: `events` (`after=`), `result`, `cancel`,
        `feedback`."""
        return self._at(f"/v1/runs/{_id(run_id)}" + (f"/{resource}" if resource else ""), **query)

    def temporal_ui(self, workflow_id: str) -> str:
        """The workflow in the Temporal UI (`Settings.temporal_ui_url`: with the settings only)."""
        if self.settings is None:
            return ""
        namespace = _id(self.settings.temporal_namespace)
        return f"{self.settings.temporal_ui_url}/namespaces/{namespace}/workflows/{_id(workflow_id)}"

    def run_urls(self, run_id: str) -> RunUrls:
        """What a create answers and every `RunView` carries."""
        return RunUrls(
            run=self.run(run_id),
            events=self.run(run_id, "events"),
            result=self.run(run_id, "result"),
            cancel=self.run(run_id, "cancel"),
            temporal_ui=self.temporal_ui(run_id),
        )

    def experiment(self, experiment_id: str, resource: str = "") -> str:
        """An experiment (`/v1/experiments/{id}`), or one of its resources: `events`, `cancel`, `rerun-failed`,
        `report`, `report.csv`, `report.jsonl`."""
        return self._at(f"/v1/experiments/{_id(experiment_id)}" + (f"/{resource}" if resource else ""))

    def experiment_urls(self, experiment_id: str) -> ExperimentUrls:
        """What an experiment's create, view and runs-list row carry."""
        return ExperimentUrls(
            run=self.experiment(experiment_id),
            events=self.experiment(experiment_id, "events"),
            result=self.experiment(experiment_id, "report"),
            cancel=self.experiment(experiment_id, "cancel"),
            temporal_ui=self.temporal_ui(experiment_id),
            rerun_failed=self.experiment(experiment_id, "rerun-failed"),
            report_csv=self.experiment(experiment_id, "report.csv"),
            report_jsonl=self.experiment(experiment_id, "report.jsonl"),
        )

    def create(self, spec: PipelineSpec) -> str:
        return self._at(f"/v1/{spec.path}")

    def world(self, world_id: str, resource: str = "") -> str:
        """A world's resources: `life` (start it), `life/pause|resume|stop`, `events` (inject one)."""
        return self._at(f"/v1/worlds/{_id(world_id)}" + (f"/{resource}" if resource else ""))

    def messages(self, conversation_id: str) -> str:
        """Where a conversation is talked to (`POST`)."""
        return self._at(f"/v1/conversations/{_id(conversation_id)}/messages")

    def knowledge(self) -> str:
        return self._at("/v1/knowledge")

    def document(self, doc_id: str) -> str:
        return self._at(f"/v1/knowledge/{_id(doc_id)}")

    def verdicts(self, resource: str = "ratings", **query: Any) -> str:
        """People's verdicts: `ratings` (`run=`, `experiment=`), `ratings/export`, `votes` (`votes/<id>`),
        `leaderboard` and `judge` (`experiment=`)."""
        return self._at(f"/v1/{resource}", **query)

    def artifact(self, key: str, width: int | None = None) -> str:
        """Where a client fetches an artifact (never a worker's path); `width`: a picture sized down."""
        return self._at(f"/v1/artifacts/{quote(key)}", width=width or None)

    def with_artifact_links(self, value: Any) -> Any:
        """`value` (a result's or an event's JSON) with a `url` beside every artifact: an `ArtifactRef`, or an
        event's `{"key": …}`."""
        if isinstance(value, dict):
            linked = {name: self.with_artifact_links(item) for name, item in value.items()}
            if isinstance(value.get("key"), str) and ("sha256" in value or value.keys() <= {"key", "url"}):
                linked["url"] = self.artifact(value["key"])
            return linked
        if isinstance(value, list):
            return [self.with_artifact_links(item) for item in value]
        return value

    # --- the Studio --------------------------------------------------------------------------------------
    def runs_page(self, **query: Any) -> str:
        """The run list; `query`: its filters, page and part, as the page's own links keep them."""
        return self._at("/", **query)

    def run_page(self, run_id: str, part: str = "") -> str:
        """The run's page, or a part of it: `part` (what the page swaps in as the run goes), `thumbnail`."""
        return self._at(f"/runs/{_id(run_id)}" + (f"/{part}" if part else ""))

    def character_page(self, life_id: str, username: str) -> str:
        """A living world's character: its followers, whom it follows, its posts, memory and reflections."""
        return self._at(f"/runs/{_id(life_id)}/characters/{_id(username)}")

    def new_page(self, pipeline: str, start_from: str | None = None) -> str:
        """A new run's form, filled from `start_from`'s job when given."""
        return self._at(f"/new/{_id(pipeline)}", start_from=start_from)

    def compare_page(self) -> str:
        return self._at("/compare")

    def experiment_page(self, experiment_id: str, part: str = "", **query: Any) -> str:
        """The experiment's page (`query`: its `mode`, `sort`, `regressions`), or a part of it: `part` (what
        the page swaps in as cells finish), `cells` (its children, for the runs list), `compare` (its cells as
        a grid), `thumbnail`, `pictures/<token>` (a cell's picture in blind mode)."""
        return self._at(f"/experiments/{_id(experiment_id)}" + (f"/{part}" if part else ""), **query)

    def rate_page(self, experiment_id: str, part: str = "", **query: Any) -> str:
        """The experiment's blind queue (`query`: the pair `a`, `b` to show, by their pictures' tokens), or a
        part of it: `vote`, `undo`, `pictures/<token>`."""
        return self._at("/rate" + (f"/{part}" if part else ""), experiment=experiment_id, **query)

    def leaderboard_page(self, experiment_id: str | None = None) -> str:
        """The models by people's votes, or one experiment's variants."""
        return self._at("/leaderboard", experiment=experiment_id)

    def judge_page(self, experiment_id: str | None = None) -> str:
        """Each evaluator model against people's verdicts."""
        return self._at("/judge", experiment=experiment_id)

    def conversations_page(self) -> str:
        return self._at("/conversations")

    def conversation_page(self, conversation_id: str) -> str:
        return self._at(f"/conversations/{_id(conversation_id)}")

    def knowledge_page(self) -> str:
        return self._at("/knowledge")

    def document_page(self, doc_id: str, chunk: str | None = None) -> str:
        """A document's passages; `chunk`: at that passage."""
        return self._at(f"/knowledge/{_id(doc_id)}") + (f"#chunk-{chunk}" if chunk is not None else "")

    def studio_page(self, pipeline: str, workflow_id: str) -> str:
        """Where the Studio shows a run of `pipeline` (a conversation, an ingest, or a pipeline's run)."""
        if pipeline == "conversation":
            return self.conversation_page(workflow_id)
        if pipeline == EXPERIMENT_PIPELINE:
            return self.experiment_page(workflow_id)
        return self.knowledge_page() if pipeline == "knowledge" else self.run_page(workflow_id)

    def signin_page(self, next_path: str | None = None) -> str:
        """The sign-in page, going on to `next_path` once signed in."""
        return self._at("/signin", next=next_path)

    def signout(self) -> str:
        return self._at("/signout")

    def static(self, name: str) -> str:
        return self._at(f"/static/{name}")
