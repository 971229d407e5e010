#!/usr/bin/env python3
"""Writes a fixed corpus of realistic 20-event RUM batches (one JSON body per line) for the ingest benchmark.

Deterministic (seeded) so runs are comparable; only the base timestamp (argument 2) changes between runs.
No event_id: the server assigns one, so every request inserts 20 new rows (no dedupe shortcut).
"""
import json, random, sys

random.seed(42)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
UAS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
]
PAGES = ["/", "/cart", "/checkout", "/search", "/account/orders"] + [f"/products/{i}" for i in range(1, 400)] + [
    f"/blog/post-{i}" for i in range(30)]
APIS = ["/api/cart", "/api/products/{}", "/api/search?q=shoes", "/api/users/{}/orders", "/api/recommendations"]
TS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_800_000_000_000  # ms; run.sh passes "now - 1h"


def event(kind, session, ts, url, ua):
    base = {"type": kind, "session_id": session, "timestamp": ts, "user_agent": ua,
            "viewport": {"width": 1280, "height": 720}, "page": {"url": url, "referrer": ""}}
    r = random.random
    if kind == "page_load":
        ttfb = int(50 + r() * 400)
        base["metrics"] = {"dns_lookup": int(r() * 30), "tcp_connection": int(r() * 40), "tls_negotiation": int(r() * 40),
                           "ttfb": ttfb, "content_download": int(r() * 80), "dom_processing": int(100 + r() * 600),
                           "dom_complete": int(ttfb + 300 + r() * 2000), "onload": int(ttfb + 400 + r() * 2500),
                           "total": int(ttfb + 500 + r() * 3000)}
    elif kind == "api_call":
        ep = random.choice(APIS).format(random.randint(1, 10_000))
        base["api"] = {"method": random.choice(["GET", "GET", "POST"]), "endpoint": "https://api.shop.example.com" + ep,
                       "duration": round(10 + r() * 400, 1), "status": random.choice([200] * 18 + [404, 500])}
    elif kind == "resource_load":
        base["resource"] = {"name": f"https://cdn.shop.example.com/static/app.{random.randint(1, 50)}.js",
                            "type": random.choice(["script", "img", "css"]), "duration": round(r() * 300, 1),
                            "size": random.randint(1000, 300000)}
    elif kind == "web_vital":
        name = random.choice(["LCP", "INP", "CLS", "FCP", "TTFB"])
        base["name"] = name
        base["value"] = round(r() * 0.4, 3) if name == "CLS" else round(r() * 5000, 1)
        base["rating"] = "good"
    elif kind == "long_task":
        base["duration"] = int(50 + r() * 300)
        base["attribution"] = [{"name": "self", "entryType": "taskattribution", "startTime": 0, "duration": 0}]
    elif kind == "user_interaction":
        base["interaction"] = {"action": "click", "target": "button#add-to-cart", "duration": int(r() * 200)}
    elif kind == "error":
        base["error"] = {"message": random.choice(["TypeError: x is undefined", "NetworkError when fetching"]),
                         "stack": "at render (app.js:10:5)\nat main (app.js:1:1)", "page": url}
    return base


KINDS = ["page_load"] * 2 + ["api_call"] * 6 + ["resource_load"] * 5 + ["web_vital"] * 4 + ["long_task", "user_interaction", "error"]
for b in range(n):
    session = f"sess-{b:06d}"
    ua = random.choice(UAS)
    url = "https://shop.example.com" + random.choice(PAGES) + "?utm_source=bench"
    events = [event(random.choice(KINDS), session, TS + b * 1000 + i, url, ua) for i in range(20)]
    print(json.dumps({"events": events}, separators=(",", ":")))
