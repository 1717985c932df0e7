"""deploy/ without a cluster: every overlay renders with `kubectl kustomize`; its core kinds pass
`kubernetes-validate --strict` and yamllint; KEDA's objects validate against KEDA's models and the temporal
scaler's parameters; the worker controller's against its CRDs' required fields. And what keeps a rollout or a
scale-down from dropping a paid call: grace periods past each queue's shutdown, probes on the worker's health
endpoint, a disruption budget per Deployment; the project's images; secrets only by reference."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from models.settings import IMAGE_QUEUE, SCORING_QUEUE, TEXT_QUEUE, Settings
from tests.conftest import ROOT
from tests.k8s_support import (
    APPLIED,
    DEPLOY,
    RENDERS,
    Doc,
    environment,
    kind_of,
    named,
    need,
    pod_templates,
    queues_of,
    rendered_text,
    settings_data,
)
from workers.health import CHECK_TIMEOUT_S
from workers.registry import QUEUES, graceful_shutdown

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGES = {"atelier-worker", "atelier-worker-cuda"}
# the Secrets the README's Scale-out section tells the reader to create; nothing else may be referenced
SECRETS = {
    "atelier-temporal", "atelier-temporal-tls", "atelier-s3", "atelier-provider", "atelier-codec", "atelier-database"
}  # fmt: skip
SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN)")
# after its graceful shutdown a worker still cancels what is left and exits: at least this long
EXIT_MARGIN_S = 10
KUBERNETES = ["1.30.0", "1.37.0"]  # the oldest KEDA 2.17 supports, the newest kubernetes-validate knows
CORE_GROUPS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2", "batch/v1"}

# KEDA's temporal scaler as of v2.17.0, the oldest release this project supports (pkg/scalers/temporal.go):
# parameters read from trigger metadata; those also readable from the target's environment (<name>FromEnv);
# parameters of a TriggerAuthentication. Later releases only add to these.
TRIGGER_PARAMETERS = {
    "endpoint", "namespace", "activationTargetQueueSize", "targetQueueSize", "taskQueue", "queueTypes", "buildId",
    "selectAllActive", "selectUnversioned", "minConnectTimeout", "unsafeSsl",
}  # fmt: skip
FROM_ENV = {"endpoint", "namespace", "taskQueue", "buildId", "apiKey"}
AUTH_PARAMETERS = {"apiKey", "cert", "key", "keyPassword", "ca"}
QUEUE_TYPES = {"workflow", "activity", "nexus"}
SCALED_QUEUES = {TEXT_QUEUE, IMAGE_QUEUE, SCORING_QUEUE}  # the paid and the scoring queues

# temporal-worker-controller's CRDs (temporal.io/v1alpha1, controller v1.7+): required fields and rules
WD_REQUIRED = {"spec": ["template", "rollout", "sunset", "workerOptions"]}
STRATEGIES = {"Manual", "AllAtOnce", "Progressive"}
HOST_PORT = re.compile(r"^[a-zA-Z0-9.-]+:[0-9]+$")
CONTROLLER_ENV = {"TEMPORAL_DEPLOYMENT_NAME", "TEMPORAL_WORKER_BUILD_ID"}


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, tuple[str, list[Doc]]]:
    scratch = tmp_path_factory.mktemp("kustomize")
    out = {}
    for name in RENDERS:
        text = rendered_text(name, scratch)
        out[name] = (text, [doc for doc in yaml.safe_load_all(text) if doc])
    return out


def docs_of(renders, name: str) -> list[Doc]:
    return renders[name][1]


@pytest.mark.parametrize("name", RENDERS)
def test_every_overlay_renders_every_worker_kind_and_the_api(renders, name):
    docs = docs_of(renders, name)
    served = [queue for _, template in pod_templates(docs) for queue in queues_of(template)]
    assert set(served) == set(QUEUES), "every queue has workers"
    versioned = any(doc["kind"] == "WorkerDeployment" for doc in docs)  # one Worker Deployment per queue there
    assert served.count(SCORING_QUEUE) == (1 if versioned else 2), "scoring on the CPU and (unversioned) a GPU"
    assert named(docs, "Deployment", "atelier-api")["spec"]["template"]["spec"]["containers"][0]["command"][:4] == [
        "python", "-m", "starter", "serve"
    ]  # fmt: skip
    service = named(docs, "Service", "atelier-api")
    api = named(docs, "Deployment", "atelier-api")["spec"]["template"]
    assert service["spec"]["selector"].items() <= api["metadata"]["labels"].items()
    ports = {port["name"] for port in api["spec"]["containers"][0]["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports
    assert {doc["metadata"].get("namespace") for doc in docs} == {"atelier"}


def test_core_kinds_pass_kubernetes_validate_strict(renders, tmp_path):
    """Every core object of every render, and each WorkerDeployment's pod template as a PodTemplate."""
    script = Path(sys.executable).with_name("kubernetes-validate")
    tool = need(str(script) if script.exists() else None, "kubernetes-validate", "pip install -e '.[dev]'")
    core = []
    for name in RENDERS:
        for doc in docs_of(renders, name):
            if doc["apiVersion"] in CORE_GROUPS:
                core.append(doc)
            elif doc["kind"] == "WorkerDeployment":
                meta = {"name": doc["metadata"]["name"], "namespace": doc["metadata"]["namespace"]}
                core.append(
                    {"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta, "template": doc["spec"]["template"]}
                )
    core = list({yaml.safe_dump(doc): doc for doc in core}.values())  # renders share most objects
    kinds = {doc["kind"] for doc in core}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
        "PodTemplate",
    } <= kinds
    manifest = tmp_path / "core.yaml"
    manifest.write_text(yaml.safe_dump_all(core))
    for version in KUBERNETES:
        done = subprocess.run(
            [tool, "--strict", "--quiet", "-k", version, str(manifest)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and "ERROR" not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr


def test_sources_and_renders_pass_yamllint(renders, tmp_path):
    need(yamllint_present(), "yamllint", "pip install -e '.[dev]'")
    for name in RENDERS:
        (tmp_path / f"{name.replace('/', '_')}.yaml").write_text(renders[name][0])
    done = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(DEPLOY / "yamllint.yaml"), str(DEPLOY), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert len(list(DEPLOY.rglob("*.yaml"))) > 20, "the sources were linted"


def yamllint_present() -> str | None:
    try:
        import yamllint  # noqa: F401
    except ImportError:
        return None
    return "yamllint"


def keda_models():
    try:
        from cloudcoil.models.keda import v1alpha1
    except ImportError:
        need(None, "cloudcoil-models-keda", "pip install -e '.[dev]'")
    return v1alpha1


@pytest.mark.parametrize("name", [name for name in RENDERS if "keda" in name or name.startswith("self-hosted")])
def test_keda_objects_validate_against_kedas_models(renders, name):
    """Each ScaledObject and TriggerAuthentication parses as KEDA's own model and says nothing it drops."""
    models = keda_models()
    keda = [doc for doc in docs_of(renders, name) if doc["apiVersion"] == "keda.sh/v1alpha1"]
    assert {doc["kind"] for doc in keda} >= {"ScaledObject"}
    for doc in keda:
        model = getattr(models, doc["kind"]).model_validate(doc)
        assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == doc, f"{doc['kind']} has unknown keys"


@pytest.mark.parametrize("name", [name for name in RENDERS if "keda" in name or name.startswith("self-hosted")])
def test_triggers_speak_the_temporal_scalers_parameters(renders, name):
    docs = docs_of(renders, name)
    auths = {doc["metadata"]["name"]: doc for doc in kind_of(docs, "TriggerAuthentication")}
    for scaled in kind_of(docs, "ScaledObject"):
        target = named(docs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])["spec"]["template"]
        env = environment(target, docs)
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "temporal"
            meta = trigger["metadata"]
            allowed = TRIGGER_PARAMETERS | {f"{p}FromEnv" for p in FROM_ENV}
            assert set(meta) <= allowed, f"{scaled['metadata']['name']}: not the scaler's: {set(meta) - allowed}"
            assert ("endpoint" in meta) != ("endpointFromEnv" in meta) and "taskQueue" in meta
            assert "queueTypes" in meta, "explicit: KEDA's docs say workflow, its code reads every type"
            assert set(meta["queueTypes"].split(",")) <= QUEUE_TYPES
            assert int(meta["targetQueueSize"]) > 0 and int(meta["activationTargetQueueSize"]) >= 0
            for key, variable in meta.items():
                if key.endswith("FromEnv"):
                    assert variable in env, f"{variable} is not in the target pod's environment"
            assert meta["taskQueue"] in queues_of(target), "the trigger reads the queue its target polls"
            if "authenticationRef" in trigger:
                auth = auths[trigger["authenticationRef"]["name"]]
                parameters = [ref["parameter"] for ref in auth["spec"]["secretTargetRef"]]
                assert set(parameters) <= AUTH_PARAMETERS and len(parameters) == len(set(parameters))
                assert ("cert" in parameters) == ("key" in parameters), "a certificate goes with its key"
                assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} <= SECRETS
    secured = "temporal-cloud" in name or "mtls" in name
    assert all(
        ("authenticationRef" in t) == secured for s in kind_of(docs, "ScaledObject") for t in s["spec"]["triggers"]
    )


@pytest.mark.parametrize("name", ["keda/temporal-cloud", "keda/self-hosted"])
def test_each_paid_and_scoring_deployment_scales_on_its_backlog_from_one_replica(renders, name):
    docs = docs_of(renders, name)
    scaled = {doc["spec"]["scaleTargetRef"]["name"]: doc for doc in kind_of(docs, "ScaledObject")}
    for deployment in kind_of(docs, "Deployment"):
        queues = set(queues_of(deployment["spec"]["template"]))
        name_ = deployment["metadata"]["name"]
        assert (name_ in scaled) == bool(queues & SCALED_QUEUES), name_
        assert ("replicas" in deployment["spec"]) == (name_ not in scaled), f"{name_}: KEDA owns the replica count"
    for target, doc in scaled.items():
        spec = doc["spec"]
        assert spec["minReplicaCount"] >= 1, f"{target}: KEDA scaling to zero does not see tasks in flight"
        assert "idleReplicaCount" not in spec and spec["maxReplicaCount"] > spec["minReplicaCount"]
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300, "a brief lull removes no draining pod"
        assert [(p["type"], p["value"]) for p in behavior["scaleDown"]["policies"]] == [("Pods", 1)], "one at a time"
        assert spec["fallback"]["replicas"] >= spec["minReplicaCount"]


@pytest.mark.parametrize("queue", [TEXT_QUEUE, IMAGE_QUEUE])
def test_paid_workers_stop_where_the_provider_limit_makes_more_only_wait(renders, queue):
    """At most RPM requests start a minute and each ends within LLM_TIMEOUT_S, so no more than
    RPM x timeout / 60 calls are ever in flight: slots past that (max replicas x slots per worker) only wait."""
    docs = docs_of(renders, "keda/self-hosted")
    kind = "image" if queue == IMAGE_QUEUE else "text"
    data = settings_data(docs)
    rpm, timeout = float(data[f"ATELIER_{kind.upper()}_RPM"]), float(data["LLM_TIMEOUT_S"])
    slots = int(data[f"ATELIER_{kind.upper()}_CONCURRENCY"])
    (scaled,) = [
        doc for doc in kind_of(docs, "ScaledObject") if doc["spec"]["triggers"][0]["metadata"]["taskQueue"] == queue
    ]
    assert rpm > 0, "the example settings carry a limit to size against"
    assert scaled["spec"]["maxReplicaCount"] * slots <= rpm * timeout / 60
    target = int(scaled["spec"]["triggers"][0]["metadata"]["targetQueueSize"])
    assert target <= slots, "a replica is added before one worker's worth of calls waits"


def test_worker_controller_objects_have_their_crds_required_fields(renders):
    docs = docs_of(renders, "worker-controller")
    data = settings_data(docs)
    connections = {doc["metadata"]["name"]: doc for doc in kind_of(docs, "Connection")}
    for connection in connections.values():
        spec = connection["spec"]
        assert HOST_PORT.match(spec["hostPort"]) and spec["hostPort"] == data["TEMPORAL_ADDRESS"]
        assert not ("mutualTLSSecretRef" in spec and "apiKeySecretRef" in spec), "one kind of credential"
        assert spec["apiKeySecretRef"]["key"] and spec["apiKeySecretRef"]["name"] in SECRETS
    deployments = kind_of(docs, "WorkerDeployment")
    assert {doc["metadata"]["name"] for doc in deployments} == {
        doc["metadata"]["name"] for doc in kind_of(docs_of(renders, "k8s/overlays/temporal-cloud"), "Deployment")
    } - {"atelier-api", "atelier-scoring-gpu"}, "a WorkerDeployment per worker kind (one scorer: one per queue)"
    assert [doc["metadata"]["name"] for doc in kind_of(docs, "Deployment")] == ["atelier-api"], "no worker Deployment"
    for doc in deployments:
        spec = doc["spec"]
        assert doc["apiVersion"] == "temporal.io/v1alpha1" and len(doc["metadata"]["name"]) <= 63
        assert set(WD_REQUIRED["spec"]) <= set(spec), set(WD_REQUIRED["spec"]) - set(spec)
        options = spec["workerOptions"]
        assert (
            options["connectionRef"]["name"] in connections
            and options["temporalNamespace"] == data["TEMPORAL_NAMESPACE"]
        )
        rollout = spec["rollout"]
        assert rollout["strategy"] == "Progressive" and rollout["strategy"] in STRATEGIES
        steps = rollout["steps"]
        assert 0 < len(steps) <= 20 and all(set(step) == {"rampPercentage", "pauseDuration"} for step in steps)
        ramps = [step["rampPercentage"] for step in steps]
        assert ramps == sorted(set(ramps)) and all(isinstance(r, int) and 1 <= r <= 99 for r in ramps)
        assert all(duration(step["pauseDuration"]) >= timedelta(seconds=30) for step in steps), "the CRD's minimum"
        assert all(duration(spec["sunset"][key]) > timedelta(0) for key in ("scaledownDelay", "deleteDelay"))
        template = spec["template"]
        assert {"metadata", "spec"} <= set(template) and template["spec"].get("restartPolicy", "Always") == "Always"
        names = {item["name"] for item in template["spec"]["containers"][0].get("env", [])}
        assert not names & CONTROLLER_ENV and not set(environment(template, docs)) & CONTROLLER_ENV, "the controller's"
        assert spec["replicas"] >= 1


def duration(text: str) -> timedelta:
    """A Kubernetes duration such as 1h, 5m or 1h30m."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert parts and text, f"not a duration: {text!r}"
    hours, minutes, seconds = (int(part or 0) for part in parts.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


@pytest.mark.parametrize("name", RENDERS)
def test_every_worker_outlives_its_queues_graceful_shutdown(renders, name):
    """Kubernetes kills a pod terminationGracePeriodSeconds after SIGTERM; the worker's graceful shutdown
    (workers.registry.graceful_shutdown, from the settings the pod reads) must end first, or a rollout or a
    scale-down cancels a picture the provider is making (and bills)."""
    docs = docs_of(renders, name)
    checked = 0
    for owner, template in pod_templates(docs):
        if not (queues := queues_of(template)):
            continue
        env = {k: v for k, v in environment(template, docs).items() if not k.startswith("TEMPORAL_")}
        settings = Settings(_env_file=None, **env)
        shutdown = max(graceful_shutdown(queue, settings).total_seconds() for queue in queues)
        grace = template["spec"]["terminationGracePeriodSeconds"]
        assert grace >= shutdown + EXIT_MARGIN_S, f"{owner['metadata']['name']}: {grace} s for a {shutdown} s shutdown"
        checked += 1
    assert checked == (6 if kind_of(docs, "WorkerDeployment") else 7)


def test_a_longer_provider_timeout_needs_a_longer_grace(renders):
    """The check above reads the pod's settings: the same pods with LLM_TIMEOUT_S at 300 s would be cut short."""
    docs = docs_of(renders, "k8s/overlays/self-hosted")
    template = named(docs, "Deployment", "atelier-images")["spec"]["template"]
    env = {k: v for k, v in environment(template, docs).items() if not k.startswith("TEMPORAL_")}
    longer = Settings(_env_file=None, **(env | {"LLM_TIMEOUT_S": "300"}))
    assert (
        graceful_shutdown(IMAGE_QUEUE, longer).total_seconds() + EXIT_MARGIN_S
        > template["spec"]["terminationGracePeriodSeconds"]
    )


def template_of(docs: list[Doc], name: str) -> Doc:
    """The pod template of the Deployment or WorkerDeployment `name`."""
    (template,) = [template for owner, template in pod_templates(docs) if owner["metadata"]["name"] == name]
    return template


@pytest.mark.parametrize("name", RENDERS)
def test_every_image_is_the_projects_at_its_version(renders, name):
    docs = docs_of(renders, name)
    for _, template in pod_templates(docs):
        for container in template["spec"]["containers"] + template["spec"].get("initContainers", []):
            repository, _, tag = container["image"].rpartition(":")
            assert repository.rsplit("/", 1)[-1] in IMAGES, container["image"]
            assert tag == VERSION and container["imagePullPolicy"] == "IfNotPresent"
    if not kind_of(docs, "WorkerDeployment"):  # the versioned variant has one scorer (one per queue)
        gpu = template_of(docs, "atelier-scoring-gpu")["spec"]["containers"][0]
        assert gpu["image"].startswith("atelier-worker-cuda:"), "the GPU scorer runs the CUDA build"


@pytest.mark.parametrize("name", RENDERS)
def test_every_secret_is_a_reference(renders, name):
    docs = docs_of(renders, name)
    assert not kind_of(docs, "Secret"), "no Secret ships with the manifests"
    for key in settings_data(docs):
        assert not SECRET_NAME.search(key) or key.endswith(("_PATH", "_FILE")), f"{key} in a ConfigMap"
    referenced = set()
    for _, template in pod_templates(docs):
        spec = template["spec"]
        for container in spec["containers"]:
            for item in container.get("env", []):
                if SECRET_NAME.search(item["name"]):
                    assert "value" not in item and "secretKeyRef" in item["valueFrom"], item["name"]
                    referenced.add(item["valueFrom"]["secretKeyRef"]["name"])
            referenced |= {
                source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source
            }
        referenced |= {volume["secret"]["secretName"] for volume in spec.get("volumes", []) if "secret" in volume}
    assert {"atelier-s3", "atelier-temporal"} <= referenced <= SECRETS, referenced
    guide = scale_out_guide()
    assert all(f"secret generic {secret}" in guide for secret in referenced), "the guide says how to create each"


def scale_out_guide() -> str:
    """The README's "Scale-out" section: what a reader takes to a cluster."""
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("\n## Scale-out\n") :].split("\n## ", 2)[1]


@pytest.mark.parametrize("name", ["k8s/overlays/temporal-cloud", "keda/temporal-cloud"])
def test_on_temporal_cloud_a_pod_without_the_api_key_does_not_start(renders, name):
    for _, template in pod_templates(docs_of(renders, name)):
        (temporal,) = [
            s
            for s in template["spec"]["containers"][0]["envFrom"]
            if s.get("secretRef", {}).get("name") == "atelier-temporal"
        ]
        assert temporal["secretRef"]["optional"] is False
    assert settings_data(docs_of(renders, name))["TEMPORAL_TLS"] == "true"


@pytest.mark.parametrize("name", RENDERS)
def test_pods_run_unprivileged_within_limits_with_probes_and_disruption_budgets(renders, name):
    docs = docs_of(renders, name)
    budgets = kind_of(docs, "PodDisruptionBudget")
    for owner, template in pod_templates(docs):
        spec, (container,) = template["spec"], template["spec"]["containers"]
        label = owner["metadata"]["name"]
        pod = spec["securityContext"]
        assert (
            pod["runAsNonRoot"] is True
            and pod["runAsUser"] >= 1000
            and pod["seccompProfile"]["type"] == "RuntimeDefault"
        )
        assert spec["automountServiceAccountToken"] is False
        hardened = container["securityContext"]
        assert hardened["allowPrivilegeEscalation"] is False and hardened["readOnlyRootFilesystem"] is True
        assert hardened["capabilities"]["drop"] == ["ALL"]
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        scratch = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
        assert mounts["/tmp"] in scratch and mounts["/data"] in scratch, "writable scratch on a read-only root"
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{label}: {bound}"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        env = environment(template, docs)
        if queues_of(template):  # a worker: probes on its health endpoint
            assert ports["health"] == int(env["ATELIER_HEALTH_PORT"]) and env["ATELIER_HEALTH_HOST"] == "0.0.0.0"
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
            assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
            assert container["readinessProbe"]["timeoutSeconds"] > CHECK_TIMEOUT_S, "the probe outwaits the check"
            assert ports["metrics"] == int(env["ATELIER_METRICS_PORT"])
        else:
            assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        if owner["kind"] == "Deployment":
            rolling = owner["spec"]["strategy"]["rollingUpdate"]
            if "nvidia.com/gpu" in container["resources"]["limits"]:  # no spare GPU to surge onto
                assert (rolling["maxSurge"], rolling["maxUnavailable"]) == (0, 1), f"{label}: drains, then starts"
            else:
                assert rolling["maxUnavailable"] == 0, f"{label}: a replacement polls before an old pod drains"
        labels = template["metadata"]["labels"]
        mine = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(mine) == 1 and mine[0]["spec"].get("maxUnavailable") == 1, f"{label}: one budget, drains go on"
        assert mine[0]["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow", (
            f"{label}: Temporal away blocks no drain"
        )
    if not kind_of(docs, "WorkerDeployment"):  # the versioned variant has one scorer (one per queue)
        gpu = template_of(docs, "atelier-scoring-gpu")
        resources = gpu["spec"]["containers"][0]["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == 1 and environment(gpu, docs)["ATELIER_SCORING_DEVICE"] == "cuda"
    cpu = template_of(docs, "atelier-scoring-cpu")
    assert "nvidia.com/gpu" not in cpu["spec"]["containers"][0]["resources"]["limits"]
    assert environment(cpu, docs)["ATELIER_SCORING_DEVICE"] == "cpu"


@pytest.mark.parametrize("name", RENDERS)
def test_the_api_and_the_events_workers_share_one_database_named_by_a_secret(renders, name):
    """Keys, tenants and webhook endpoints live in the database of the `atelier-database` Secret's
    ATELIER_DATABASE_URL: the API and the events workers (the signing secrets) must have it; no volume is
    shared between pods any more, and no other pod is given the database."""
    docs = docs_of(renders, name)
    assert not kind_of(docs, "PersistentVolumeClaim") and "ATELIER_API_KEYS_FILE" not in settings_data(docs)
    given = set()
    for owner, template in pod_templates(docs):
        sources = template["spec"]["containers"][0].get("envFrom", [])
        database = [s["secretRef"] for s in sources if s.get("secretRef", {}).get("name") == "atelier-database"]
        if database:
            assert not database[0].get("optional"), f"{owner['metadata']['name']}: no pod starts without it"
            given.add(owner["metadata"]["name"])
        claims = [v for v in template["spec"].get("volumes", []) if "persistentVolumeClaim" in v]
        assert not claims, owner["metadata"]["name"]
    assert given == {"atelier-api", "atelier-events"}


def test_every_kustomization_in_deploy_is_rendered_here():
    folders = {path.parent.relative_to(DEPLOY).as_posix() for path in DEPLOY.rglob("kustomization.yaml")}
    parts = {"k8s/base", "k8s/components/mtls", "keda/scaledobjects", "keda/components/mtls", "worker-controller/pods"}
    assert folders == set(APPLIED) | parts, "a new kustomization is tested too"


def test_the_guides_table_says_what_the_manifests_do(renders):
    """The README's Scale-out table of Deployments: each row's queue, replica range and grace period."""
    docs = docs_of(renders, "keda/self-hosted")
    rows = {
        re.match(r"`([a-z-]+)`", cells[0]).group(1): cells
        for line in scale_out_guide().splitlines()
        if line.startswith("| `atelier-") and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 4
    }
    scaled = {doc["spec"]["scaleTargetRef"]["name"]: doc["spec"] for doc in kind_of(docs, "ScaledObject")}
    for owner, template in pod_templates(docs):
        name = owner["metadata"]["name"]
        _, queue, scaling, grace = rows[name]
        assert grace == f"{template['spec']['terminationGracePeriodSeconds']} s", name
        assert all(f"`{q}`" in queue for q in queues_of(template)), name
        if name in scaled:
            spec = scaled[name]
            target = spec["triggers"][0]["metadata"]["targetQueueSize"]
            assert f"{spec['minReplicaCount']} to {spec['maxReplicaCount']}, a replica per {target} " in scaling, name
        else:
            assert scaling.startswith(f"{owner['spec']['replicas']} replicas"), name
