"""Times the operator console's pages in headless Chromium: see bench/console.sh."""

import json
import statistics
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

BASE, TOKEN, CUSTOMERS, ROUNDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def api(method, path, body=None):
    request = urllib.request.Request(
        f"{BASE}/admin/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def call(token):
    body = json.dumps({"modelId": "anthropic.claude-3-haiku-20240307-v1:0",
                       "anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"{BASE}/prod/bedrock", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def populate():
    started = time.time()
    tokens = []
    for index in range(CUSTOMERS):
        created = api("POST", "/customers", {
            "name": f"Customer {index:04d}", "email": f"c{index}@bench.example",
            "daily_limit": 1000 + index, "monthly_token_limit": 5_000_000})
        tokens.append(created["token"])
    for token in tokens[:50]:
        for _ in range(3):
            call(token)
    print(f"created {CUSTOMERS} customers (50 with 3 calls each) in {time.time() - started:.1f} s")


def timed_api(path):
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        api("GET", path)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000",
                     f"--user-data-dir={tempfile.mkdtemp(prefix='tollgate-bench-')}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


PAINT = """
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return [paint ? paint.startTime : null,
        Number(document.body.dataset.ready) - performance.timeOrigin,
        document.querySelectorAll('#customers tbody tr').length];
"""


def page_times(driver, fragment, view):
    first, drawn, rows = [], [], 0
    for _ in range(ROUNDS):
        driver.get("about:blank")
        driver.get(f"{BASE}/admin/{fragment}")
        WebDriverWait(driver, 60, poll_frequency=0.02).until(
            lambda d: d.execute_script("return document.body.dataset.view") == view)
        paint, ready, rows = driver.execute_script(PAINT)
        first.append(paint)
        drawn.append(ready)
    return statistics.median(first), statistics.median(drawn), rows


def main():
    populate()
    driver = browser()
    try:
        driver.get(f"{BASE}/admin/")
        driver.execute_script("sessionStorage.setItem('tollgate.console.credential', arguments[0])", TOKEN)
        overview = page_times(driver, "#/", "overview")
        customers = page_times(driver, "#/customers", "customers")
    finally:
        driver.quit()
    print(f"\nconsole with {CUSTOMERS} customers, median of {ROUNDS} loads (ms):")
    print(f"{'page':<12} {'first paint':>12} {'data drawn':>12} {'rows':>6}")
    print(f"{'overview':<12} {overview[0]:>12.0f} {overview[1]:>12.0f} {'':>6}")
    print(f"{'customers':<12} {customers[0]:>12.0f} {customers[1]:>12.0f} {customers[2]:>6}")
    print("\nAPI calls behind them, median (ms):")
    for path in ("/session", "/overview", "/series?granularity=hour&hours=24",
                 "/customers?include=limit_usage&limit=1000"):
        print(f"  GET {path:<45} {timed_api(path):>8.1f}")


if __name__ == "__main__":
    main()
