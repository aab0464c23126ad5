#!/usr/bin/python3
"""deploy_k8s_check.py -- offline checks of deploy/k8s against the binary (tests/suite_deploy.sh).

usage: deploy_k8s_check.py RENDERED.yaml ADAPTER_RULES.yaml SERVE_HELP PULL_HELP OPENAPI.json METRICS.txt

RENDERED.yaml is `kubectl kustomize deploy/k8s` (or the manifests concatenated where kubectl is
missing). Every probe path must be a GET route of the server's OpenAPI document, every probe port a
declared container port, every flag of the serve and pull containers one that `rerank serve --help`
/ `rerank pull --help` lists, every environment variable one that the help texts name, the
grace period longer than preStop + --drain-timeout, selectors must match the pod labels, and the
HPA's metric must be one that the server's /metrics exposes and that the adapter rule serves.
Prints "ok - ..." / "not ok - ..." lines; exits with the number of failures. Prints the container
args of the serve container (JSON) on the last line, "ARGS <json>", for the suite to run them.
"""
import json
import re
import sys

import yaml

rendered, rules_path, serve_help_p, pull_help_p, openapi_p, metrics_p = sys.argv[1:7]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
serve_help = open(serve_help_p).read()
pull_help = open(pull_help_p).read()
openapi = json.load(open(openapi_p))
metrics = open(metrics_p).read()
fails = 0


def check(cond, what):
    global fails
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        fails += 1


def flags_in(text):
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))


by_kind = {}
for d in docs:
    by_kind.setdefault(d.get("kind"), []).append(d)
want = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
        "PodDisruptionBudget": "policy/v1"}
for kind, api in want.items():
    objs = by_kind.get(kind, [])
    check(len(objs) == 1 and objs[0].get("apiVersion") == api and objs[0]["metadata"].get("name"),
          "one %s (%s) with a name" % (kind, api))
if fails:
    sys.exit(fails)
dep, svc, hpa, pdb = (by_kind[k][0] for k in want)
spec = dep["spec"]
pod = spec["template"]["spec"]
labels = spec["template"]["metadata"]["labels"]


def selects(sel):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


check(selects(spec["selector"]["matchLabels"]), "Deployment selector matches its pod labels")
check(selects(svc["spec"]["selector"]), "Service selector matches the pod labels")
check(selects(pdb["spec"]["selector"]["matchLabels"]), "PodDisruptionBudget selector matches the pod labels")
ref = hpa["spec"]["scaleTargetRef"]
check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "HPA scales the Deployment")

ctrs = {c["name"]: c for c in pod["containers"]}
inits = {c["name"]: c for c in pod.get("initContainers", [])}
serve = next((c for c in ctrs.values() if c.get("args", [None])[0] == "serve"), None)
check(serve is not None, "a container runs `rerank serve`")
if serve is None:
    sys.exit(fails)
args = serve["args"]
known = flags_in(serve_help)
unknown = [a for a in args[1:] if a.startswith("-") and a not in known]
check(not unknown, "every serve flag is in `rerank serve --help`" + (": unknown %s" % unknown if unknown else ""))


def arg(name, argv):
    return argv[argv.index(name) + 1] if name in argv else None


ports = {p.get("name"): p["containerPort"] for p in serve.get("ports", [])}
check(arg("--port", args) is not None and int(arg("--port", args)) in ports.values(),
      "--port %s is a declared containerPort %s" % (arg("--port", args), sorted(ports.values())))
check(arg("--host", args) in ("0.0.0.0", "::"), "--host listens on every interface (%s)" % arg("--host", args))
tp = svc["spec"]["ports"][0]["targetPort"]
check(tp in ports or tp in ports.values(), "Service targetPort %s is a container port" % tp)

gets = {p for p, ops in openapi["paths"].items() if "get" in ops}
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    pr = serve.get(probe)
    if not pr:
        check(False, "%s present" % probe)
        continue
    hg = pr.get("httpGet", {})
    check(hg.get("path") in gets, "%s path %s is a GET route of the server" % (probe, hg.get("path")))
    check(hg.get("port") in ports or hg.get("port") in ports.values(), "%s port %s is declared" % (probe, hg.get("port")))
check(serve["readinessProbe"]["httpGet"]["path"] == "/ready", "readiness is /ready (503 while loading or draining)")
check(serve["livenessProbe"]["httpGet"]["path"] == "/health", "liveness is /health (200 while loading)")

drain = int(arg("--drain-timeout", args) or 120)
pre = serve.get("lifecycle", {}).get("preStop", {})
sleep_s = 0
if "exec" in pre:
    cmd = pre["exec"]["command"]
    if cmd[0].endswith("sleep"):
        sleep_s = int(cmd[1])
elif "sleep" in pre:
    sleep_s = int(pre["sleep"]["seconds"])
check(sleep_s > 0, "preStop waits (%d s) for the endpoint to leave the load balancers" % sleep_s)
grace = pod.get("terminationGracePeriodSeconds", 30)
check(grace > drain + sleep_s, "terminationGracePeriodSeconds %d > preStop %d + --drain-timeout %d" % (grace, sleep_s, drain))

for c in list(ctrs.values()) + list(inits.values()):
    r = c.get("resources", {})
    check(r.get("requests", {}).get("cpu") and r.get("requests", {}).get("memory") and r.get("limits", {}).get("memory"),
          "container %s has cpu/memory requests and a memory limit" % c["name"])
    for e in c.get("env", []):
        helptext = pull_help if c.get("args", [""])[0] == "pull" else serve_help + pull_help
        check(e["name"] in helptext, "env %s of %s is documented by the binary's --help" % (e["name"], c["name"]))

# model cache: the init container pulls what serve loads, into the volume serve reads
pull = next((c for c in inits.values() if c.get("args", [None])[0] == "pull"), None)
check(pull is not None, "an init container runs `rerank pull`")
if pull:
    pflags = flags_in(pull_help)
    bad = [a for a in pull["args"][1:] if a.startswith("-") and a not in pflags]
    check(not bad, "every pull flag is in `rerank pull --help`" + (": unknown %s" % bad if bad else ""))
    model = arg("-m", args) or arg("--model", args)
    check(pull["args"][1] == model, "the init container pulls the model serve loads (%s)" % model)
    env = lambda c: {e["name"]: e.get("value") for e in c.get("env", [])}
    home = env(pull).get("HF_HOME")
    check(home and env(serve).get("HF_HOME") == home, "both use HF_HOME=%s" % home)
    check(env(serve).get("HF_HUB_OFFLINE") == "1", "serve runs with HF_HUB_OFFLINE=1 (the cache only)")
    mounts = lambda c: {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    check(mounts(pull).get(home) and mounts(pull).get(home) == mounts(serve).get(home),
          "HF_HOME is the same volume in both containers")
vols = {v["name"] for v in pod.get("volumes", [])}
used = {m["name"] for c in list(ctrs.values()) + list(inits.values()) for m in c.get("volumeMounts", [])}
check(used <= vols, "every mounted volume is declared")

# autoscaling on queue depth
m = hpa["spec"]["metrics"][0]
name = m.get("pods", {}).get("metric", {}).get("name")
check(m["type"] == "Pods" and name and re.search(r"^%s " % re.escape(name), metrics, re.M),
      "HPA metric %s is on the server's /metrics" % name)
rules = yaml.safe_load(yaml.safe_load(open(rules_path))["data"]["config.yaml"])["rules"]
check(any(name in r["seriesQuery"] and r["name"]["as"] == name for r in rules), "the adapter rule serves %s" % name)
check(hpa["spec"]["minReplicas"] >= 2, "at least 2 replicas, so the PDB lets one go")
print("ARGS " + json.dumps(args))
sys.exit(fails)
