"""The operator console in a real browser: Debian's Chromium driven by Selenium.

An operator signs in, creates a customer, rotates its key with a grace period, changes a
limit and assigns a plan, all from the page; calls then go through the proxy with the new
and the old token, and the page's figures are read once metering has counted them. A
viewer signs in and sees no write control, and its write is refused. A form posted from
another site's page, and an inline script, are refused.

Environment: TOLLGATE_URL, TOLLGATE_ADMIN_TOKEN, TOLLGATE_VIEWER_TOKEN, TOLLGATE_PLAN_ID,
TOLLGATE_ARTIFACTS (screenshots go there), TOLLGATE_CHROMIUM, TOLLGATE_CHROMEDRIVER.
Prints what the page showed as JSON, for the caller to compare with the CLI.
"""

import http.server
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["TOLLGATE_URL"].rstrip("/")
ADMIN = os.environ["TOLLGATE_ADMIN_TOKEN"]
VIEWER = os.environ["TOLLGATE_VIEWER_TOKEN"]
PLAN_ID = os.environ["TOLLGATE_PLAN_ID"]
ARTIFACTS = os.environ["TOLLGATE_ARTIFACTS"]
CALLS_NEW_TOKEN = 6
CALLS_OLD_TOKEN = 2


def browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,2200",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    service = Service(os.environ.get("TOLLGATE_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


class Console:
    def __init__(self, driver):
        self.driver = driver
        self.wait = WebDriverWait(
            driver,
            30,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        self.shots = []

    def script(self, code, *args):
        return self.driver.execute_script(code, *args)

    def marker(self):
        return self.script("return document.body.dataset.ready || ''")

    def settled(self, previous, view):
        self.wait.until(
            lambda _: self.marker() != previous
            and self.script("return document.body.dataset.view") == view
        )

    def go(self, fragment, view):
        previous = self.marker()
        self.script("location.hash = arguments[0]", fragment)
        self.settled(previous, view)

    def rerender(self, view):
        previous = self.marker()
        self.script("route()")
        self.settled(previous, view)

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def present(self, selector):
        return bool(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def until(self, selector):
        self.wait.until(lambda _: self.present(selector))
        return self.find(selector)

    def fill(self, selector, text):
        field = self.find(selector)
        field.clear()
        field.send_keys(text)

    def shoot(self, name):
        path = os.path.join(ARTIFACTS, f"{name}.png")
        height = self.script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, max(900, min(int(height) + 40, 6000)))
        self.driver.save_screenshot(path)
        self.driver.set_window_size(1400, 2200)
        self.shots.append(path)

    def sign_in(self, token, view="overview"):
        self.until("#credential")
        previous = self.marker()
        self.fill("#credential", token)
        self.find("#signin button[type=submit]").click()
        self.settled(previous, view)

    def sign_out(self):
        self.find("#sign-out").click()
        self.until("#credential")


def proxy_call(token):
    body = json.dumps(
        {
            "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        }
    ).encode()
    request = urllib.request.Request(
        f"{BASE}/prod/bedrock",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def admin_get(path):
    request = urllib.request.Request(
        f"{BASE}/admin/api/v1{path}", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def figure(console, name, range_name):
    cell = console.find(f'#figures tr[data-figure="{name}"] td[data-range="{range_name}"]')
    return json.loads(cell.get_attribute("data-value"))


def operator_tasks(console, seen):
    """Create, rotate, limit and plan from the page; returns the two tokens."""
    console.go("#/new", "new")
    console.fill("#new-name", "Console Co")
    console.fill("#new-email", "ops@console.example")
    console.fill("#new-daily_limit", "1000")
    console.fill("#new-monthly_token_limit", "5000000")
    console.shoot("create-form")
    console.find("#create-form button[type=submit]").click()
    first_token = console.until("#new-token").text
    link = console.find("#created-link").get_attribute("href")
    seen["customer_id"] = link.rsplit("/", 1)[1]
    previous = console.marker()
    console.find("#created-link").click()
    console.settled(previous, "customers")
    assert "Console Co" in console.find("h1").text

    console.fill("#grace", "1h")
    console.find("#rotate button[type=submit]").click()
    second_token = console.until("#new-token").text
    assert second_token and second_token != first_token
    seen["copy_button"] = console.present("#copy-token")
    states = [row.text for row in console.driver.find_elements(By.CSS_SELECTOR, "#keys tbody tr")]
    seen["keys_after_rotation"] = len(states)

    old_form = console.find("#limits-form")
    console.fill("#limit-daily_limit", "500")
    old_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    console.wait.until(lambda _: console.find("#status").text == "Limits saved.")
    # Saving reloads the customer's page: wait for the new page (the old form gone), or
    # the plan form below could be replaced between finding it and using it.
    console.wait.until(staleness_of(old_form))
    console.wait.until(
        lambda _: console.find("#limit-daily_limit").get_attribute("value") == "500"
    )

    choice = Select(console.find("#assign-plan"))
    for option in choice.options:
        if f"({PLAN_ID} v" in option.text:
            choice.select_by_visible_text(option.text)
    console.find("#assign-form button[type=submit]").click()
    console.wait.until(lambda _: PLAN_ID in console.find("#plan-text").text)
    return first_token, second_token


def read_customer_page(console, seen, expected_calls):
    deadline = time.time() + 60
    while True:
        console.rerender("customers")
        usage = console.find("#month-usage")
        if int(usage.get_attribute("data-requests")) == expected_calls:
            break
        assert time.time() < deadline, "the console never showed the metered calls"
        time.sleep(0.5)
    # The page fetches its panels in parallel: the invoice may have been read just before
    # the last calls were metered. Every call is metered now; draw the page once more.
    console.rerender("customers")
    usage = console.find("#month-usage")
    seen["page_requests"] = int(usage.get_attribute("data-requests"))
    seen["page_input_tokens"] = int(usage.get_attribute("data-input-tokens"))
    seen["page_output_tokens"] = int(usage.get_attribute("data-output-tokens"))
    seen["page_by_api"] = console.find("#month-by-api").text
    seen["invoice_total"] = console.until("#invoice-total").get_attribute("data-value")
    seen["invoice_cost_shown"] = console.present("#invoice-cost")
    seen["chart_series"] = len(console.driver.find_elements(By.CSS_SELECTOR, "#chart-calls path.line"))
    console.shoot("customer")


def read_overview_and_lists(console, seen):
    console.go("#/", "overview")
    seen["overview_month_calls"] = figure(console, "calls", "month")
    seen["overview_today_calls"] = figure(console, "calls", "today")
    seen["overview_month_tokens"] = figure(console, "tokens", "month")
    seen["overview_month_revenue"] = figure(console, "revenue", "month")
    seen["overview_month_cost"] = figure(console, "cost", "month")
    seen["overview_top_calls"] = console.find("#top-calls tbody tr").text
    seen["legend"] = [item.text for item in console.driver.find_elements(By.CSS_SELECTOR, "#charts figure .legend")]
    console.shoot("overview")

    console.go("#/customers", "customers")
    previous_rows = len(console.driver.find_elements(By.CSS_SELECTOR, "#customers tbody tr"))
    console.fill("#search", seen["customer_id"])
    console.wait.until(
        lambda _: len(console.driver.find_elements(By.CSS_SELECTOR, "#customers tbody tr")) == 1
    )
    bar = console.find('#customers tbody tr [data-limit="daily_requests"]')
    seen["list_rows_before_search"] = previous_rows
    seen["list_daily_used"] = int(bar.get_attribute("data-used"))
    console.shoot("customers")

    console.go("#/alerts", "alerts")
    seen["alerts_heading"] = console.find("h1").text
    console.shoot("alerts")


def quarantine_tasks(console, seen):
    """The record the test put in the log is listed with its reason and sent through the
    log again (the consumer quarantines it again: it is still not an event)."""
    console.go("#/quarantine", "quarantine")
    deadline = time.time() + 30
    while True:
        rows = console.driver.find_elements(By.CSS_SELECTOR, "#quarantined tbody tr")
        if rows or time.time() > deadline:
            break
        time.sleep(0.3)
        console.rerender("quarantine")
    seen["quarantine_rows"] = len(rows)
    seen["quarantine_reason"] = rows[0].find_elements(By.TAG_NAME, "td")[3].text if rows else ""
    console.shoot("quarantine")
    console.find("#requeue").click()
    console.wait.until(lambda _: "sent through the log again" in console.find("#status").text)
    seen["requeue_status"] = console.find("#status").text
    console.go("#/alerts", "alerts")


def viewer_tasks(console, seen):
    console.sign_out()
    console.sign_in(VIEWER, view="alerts")
    seen["viewer_sees_new_customer_link"] = console.find('[data-nav="new"]').is_displayed()
    console.go(f"#/customers/{seen['customer_id']}", "customers")
    controls = [
        "#rotate",
        "#limits-form button[type=submit]",
        "#assign-form",
        "#toggle-status",
        "#keys button.danger",
    ]
    seen["viewer_write_controls"] = [selector for selector in controls if console.present(selector)]
    seen["viewer_limit_input_disabled"] = not console.find("#limit-daily_limit").is_enabled()
    console.go("#/quarantine", "quarantine")
    seen["viewer_sees_requeue"] = console.present("#requeue")
    seen["viewer_write_status"] = console.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(API + "/customers/" + arguments[0] + "/limits", {
          method: "PATCH",
          headers: {"Authorization": "Bearer " + arguments[1], "Content-Type": "application/json"},
          body: JSON.stringify({daily_limit: 1}),
        }).then((response) => done(response.status));
        """,
        seen["customer_id"],
        VIEWER,
    )
    console.shoot("viewer")


class Forger(http.server.BaseHTTPRequestHandler):
    """Another site: its page posts a form to the admin API as soon as it loads."""

    def do_GET(self):  # noqa: N802 (the standard library's name)
        page = f"""<!doctype html><html><body>
<form method="post" action="{BASE}/admin/api/v1/customers" enctype="text/plain">
<input type="hidden" name='{{"name":"Forged","email":"forged@evil.example","x":"' value='"}}'>
</form><script>document.forms[0].submit()</script></body></html>"""
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def cross_site_tasks(console, seen):
    server = http.server.HTTPServer(("127.0.0.1", 0), Forger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    console.driver.get(f"http://127.0.0.1:{server.server_port}/")
    console.wait.until(lambda _: console.driver.current_url.startswith(BASE))
    seen["cross_site_answer"] = console.find("body").text
    server.shutdown()
    seen["cross_site_created"] = len(admin_get("/customers?q=Forged")["customers"])
    console.driver.get(f"{BASE}/admin/")
    console.until("#main")
    seen["inline_script_ran"] = console.script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        " document.body.append(s); return window.__inline === 1;"
    )


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    os.environ.setdefault("SE_OFFLINE", "true")
    # Chromium's profile (a few MB per run) is removed with the run, not left in /tmp.
    profile = tempfile.TemporaryDirectory(prefix="tollgate-console-")
    driver = browser(profile.name)
    console = Console(driver)
    seen = {}
    try:
        driver.get(f"{BASE}/admin/")
        seen["title"] = driver.title
        console.sign_in(ADMIN)
        seen["signed_in_as"] = console.find("#who-name").text
        first_token, second_token = operator_tasks(console, seen)
        statuses = [proxy_call(second_token) for _ in range(CALLS_NEW_TOKEN)]
        statuses += [proxy_call(first_token) for _ in range(CALLS_OLD_TOKEN)]
        seen["call_statuses"] = statuses
        read_customer_page(console, seen, CALLS_NEW_TOKEN + CALLS_OLD_TOKEN)
        read_overview_and_lists(console, seen)
        quarantine_tasks(console, seen)
        viewer_tasks(console, seen)
        cross_site_tasks(console, seen)
        seen["console_errors"] = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "Content Security Policy" not in entry["message"]
            and "/invoices/" not in entry["message"] and "403" not in entry["message"]
            and "favicon.ico" not in entry["message"]
        ]
    except Exception:
        console.shoot("failure")
        raise
    finally:
        seen["screenshots"] = console.shots
        print(json.dumps(seen))
        driver.quit()
        profile.cleanup()


if __name__ == "__main__":
    sys.exit(main())
