"""A hand-written client of the Tollgate admin API that drives the OpenAPI document's own
examples against a running server: it reads the document, validates it with
openapi-spec-validator, and runs create, rotate, limits, usage and invoice with each
operation's example body. Prints a JSON summary; exits non-zero on the first surprise.

Environment: TOLLGATE_URL (the server), TOLLGATE_ADMIN_TOKEN (an admin credential).
"""
import datetime
import json
import os
import sys

import requests
from openapi_spec_validator import validate

BASE = os.environ["TOLLGATE_URL"].rstrip("/")
TOKEN = os.environ["TOLLGATE_ADMIN_TOKEN"]
SESSION = requests.Session()
SESSION.headers["Authorization"] = f"Bearer {TOKEN}"


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


document = requests.get(f"{BASE}/admin/api/v1/openapi.json", timeout=10).json()
validate(document)

operations = {}
for path, item in document["paths"].items():
    for method, operation in item.items():
        if method != "parameters":
            operations[operation["operationId"]] = (method.upper(), path, operation)


def example_body(operation_id, media="application/json"):
    _, _, operation = operations[operation_id]
    return operation["requestBody"]["content"][media]["example"]


def call(operation_id, expect, path_values=None, body=None, raw=None, media=None, query=None):
    method, path, _ = operations[operation_id]
    for name, value in (path_values or {}).items():
        path = path.replace("{" + name + "}", value)
    headers = {}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    if raw is not None:
        headers["Content-Type"] = media
        data = raw
    response = SESSION.request(method, BASE + path, headers=headers, data=data, params=query, timeout=10)
    if response.status_code != expect:
        fail(f"{operation_id}: {response.status_code} {response.text}")
    return response


created = call("createCustomer", 201, body=example_body("createCustomer")).json()
customer_id = created["customer_id"]
if not created.get("token", "").startswith("tg_"):
    fail(f"createCustomer gave no token: {created}")
rotated = call("rotateKey", 201, {"id": customer_id}, body=example_body("rotateKey")).json()
limits = call("updateLimits", 200, {"id": customer_id}, body=example_body("updateLimits")).json()
expected = example_body("updateLimits")
if limits["limits"]["daily_request_limit"] != expected["daily_limit"]:
    fail(f"updateLimits did not set daily_limit: {limits}")
usage = call("getUsage", 200, {"id": customer_id}).json()
plan_text = example_body("addPlan", "application/toml")
call("addPlan", 201, raw=plan_text, media="application/toml")
first_of_month = datetime.date.today().replace(day=1).isoformat()
assignment = dict(example_body("assignPlan"), effective_from=first_of_month)
call("assignPlan", 200, {"id": customer_id}, body=assignment)
month = first_of_month[:7]
invoice = call("getInvoice", 200, {"id": customer_id, "period": month}).json()
csv = call("getInvoice", 200, {"id": customer_id, "period": month}, query={"format": "csv"}).text

# Every other operation of the document once, so that each route runs on this backend.
page = call("listCustomers", 200, query={"limit": 1}).json()
if not page["customers"]:
    fail(f"listCustomers returned nothing: {page}")
profile = call("getCustomer", 200, {"id": customer_id}).json()
if profile["plan"]["plan_id"] != assignment["plan_id"]:
    fail(f"getCustomer does not show the plan: {profile}")
renamed = call("updateCustomer", 200, {"id": customer_id}, body=example_body("updateCustomer")).json()
keys = call("listKeys", 200, {"id": customer_id}).json()["keys"]
first_key = keys[0]["key_id"]
revoked = call("revokeKey", 200, {"id": customer_id, "key_id": first_key}).json()
if revoked["state"] != "revoked":
    fail(f"revokeKey: {revoked}")
call("disableCustomer", 200, {"id": customer_id})
call("enableCustomer", 200, {"id": customer_id})
plans = call("listPlans", 200).json()["plans"]
alerts = call("listAlerts", 200, query={"since": "1d"}).json()["alerts"]
audit = call("listAudit", 200, query={"customer_id": customer_id}).json()["entries"]
summary = call("getSummary", 200).json()
margins = call("getMargins", 200, query={"customer_id": customer_id}).json()["margins"]
costs = call("getCosts", 200, {"id": customer_id}).json()
if costs["customer_id"] != customer_id or costs["days"]:
    fail(f"getCosts: a customer without calls has no cost days: {costs}")
if not margins or margins[0]["revenue_currency"] != "USD":
    fail(f"getMargins: {margins}")
session = call("getSession", 200).json()
if session["role"] != "admin" or not session["may_write"]:
    fail(f"getSession: {session}")
overview = call("getOverview", 200).json()
if overview["month_to_date"]["calls"] != 0 or not overview["prices_configured"]:
    fail(f"getOverview: {overview}")
series = call("getSeries", 200, query={"granularity": "day", "customer_id": customer_id}).json()
if len(series["points"]) != 30 or series["currency"] != "USD":
    fail(f"getSeries: {series}")
listed = call("listCustomers", 200, query={"include": "limit_usage", "q": customer_id}).json()
if "daily_requests" not in [bar["limit"] for bar in listed["limit_usage"][customer_id]]:
    fail(f"listCustomers with limit_usage: {listed}")
quarantined = call("listQuarantine", 200).json()["items"]
if quarantined:
    fail(f"listQuarantine: nothing was quarantined: {quarantined}")
requeued = call("requeueQuarantine", 200).json()
if requeued != {"requeued": 0, "refused": 0}:
    fail(f"requeueQuarantine: an empty quarantine requeues nothing: {requeued}")
call("getOpenApi", 200)
deleted = call("deleteCustomer", 200, {"id": customer_id}).json()
called = {
    "createCustomer", "rotateKey", "updateLimits", "getUsage", "addPlan", "assignPlan", "getInvoice",
    "listCustomers", "getCustomer", "updateCustomer", "listKeys", "revokeKey", "disableCustomer",
    "enableCustomer", "listPlans", "listAlerts", "listAudit", "getSummary", "getMargins", "getCosts", "getOpenApi",
    "getSession", "getOverview", "getSeries", "deleteCustomer", "listQuarantine", "requeueQuarantine",
}
if called != set(operations):
    fail(f"operations not driven: {set(operations) - called}")
print(json.dumps({
    "customer_id": customer_id,
    "customer_token": created["token"],
    "rotated_token": rotated["token"],
    "rotated_key_id": rotated["key_id"],
    "limits": limits["limits"],
    "usage_requests": usage["totals"]["requests"],
    "invoice_currency": invoice["currency"],
    "invoice_status": invoice["status"],
    "csv_lines": len(csv.strip().splitlines()),
    "renamed_email": renamed["email"],
    "plans": len(plans),
    "alerts": len(alerts),
    "audit_actions": [entry["action"] for entry in audit],
    "summary_customers": summary["customers"],
    "margin_cost": margins[0]["cost_of_goods"]["total"],
    "deleted_status": deleted["status"],
}))
