"""The names by which flows start other deployments' runs (``run_deployment``), kept where the
flows, the tasks and the deployment specs can all read them: ``<flow name>/<deployment name>``."""

INCIDENT_CLOCK_FLOW = "incident-clock"
INCIDENT_CLOCK_DEPLOYMENT_NAME = "事故报告时限"
INCIDENT_CLOCK_DEPLOYMENT = f"{INCIDENT_CLOCK_FLOW}/{INCIDENT_CLOCK_DEPLOYMENT_NAME}"

DISPATCH_FLOW = "outbox-dispatch"
DISPATCH_DEPLOYMENT_NAME = "发送待发消息"
DISPATCH_DEPLOYMENT = f"{DISPATCH_FLOW}/{DISPATCH_DEPLOYMENT_NAME}"
