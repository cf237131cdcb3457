#!/usr/bin/env python3
"""Writes demo.har: the first launch of a (fictional) shopping app, as a phone
behind an intercepting proxy would export it (HAR 1.2, mitmproxy/Chrome style).

Story (times from 2026-11-28T10:15:00Z; the decisions are in consentry.toml):
  0–3 s    app starts; SDKs beacon before the privacy dialog is answered
  10.25 s  user taps "Disagree" (advertising + analytics refused)
  10.6 s   a beacon races the tap (borderline)
  15–66 s  SDKs keep sending after the refusal; a heartbeat floods Umeng
  17–19 s  the app's own API records a US Privacy opt-out, then a bid request
           carries the advertising id without any consent signal
  30 s     user accepts the basic-features policy (functional + personalization)
  35 s     login with phone number to the app's own server (covered)
  50 s     phone number to WeChat's SDK (social: never asked, so beyond scope)
  60 s     an unknown verification service gets a resident id (pattern only)
  120 s    user withdraws all consent; traffic continues

All personal data is synthetic (the example values of DESIGN.md §10).
Deterministic: no randomness, fixed times. Run: python3 make_demo.py
"""
import base64
import gzip
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

T0 = datetime(2026, 11, 28, 10, 15, 0, tzinfo=timezone.utc)

AD_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"
ANDROID_ID = "9774d56d682e549c"
IMEI = "490154203237518"
OAID = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
MAC = "02:00:00:44:55:66"
PHONE = "+8613800138000"
EMAIL = "tester@example.org"
LAT, LON = 31.230416, 121.473701
# Not a case value: a valid GB 11643 id, found by pattern only.
RESIDENT_ID = "11010519491231002X"

UA = "ExampleShop/4.2.0 (Android 14; Pixel 7)"


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s):
    return hashlib.sha1(s.encode()).hexdigest()


def sha256(s):
    return hashlib.sha256(s.encode()).hexdigest()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def when(seconds):
    t = T0 + timedelta(seconds=seconds)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


entries = []


def entry(at, method, url, headers=(), body=None, mime=None, status=200,
          resp_mime="application/json", resp_text='{"ok":true}', http2=False,
          resp_gzip=False):
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    hdrs = []
    if http2:
        hdrs += [{"name": ":method", "value": method},
                 {"name": ":authority", "value": host},
                 {"name": ":scheme", "value": scheme},
                 {"name": ":path", "value": path}]
    else:
        hdrs.append({"name": "Host", "value": host})
    hdrs.append({"name": "User-Agent", "value": UA})
    hdrs += [{"name": k, "value": v} for k, v in headers]
    query = []
    if "?" in url:
        from urllib.parse import parse_qsl
        query = [{"name": k, "value": v}
                 for k, v in parse_qsl(url.split("?", 1)[1], keep_blank_values=True)]
    req = {
        "method": method,
        "url": url,
        "httpVersion": "http/2.0" if http2 else "HTTP/1.1",
        "headers": hdrs,
        "queryString": query,
        "cookies": [],
        "headersSize": -1,
        "bodySize": len(body.encode()) if body else 0,
    }
    if body is not None:
        req["postData"] = {"mimeType": mime or "application/octet-stream", "text": body}
    resp_headers = [{"name": "Content-Type", "value": resp_mime}]
    content = {"size": len(resp_text), "mimeType": resp_mime, "text": resp_text}
    if resp_gzip:
        # As mitmproxy exports it: header kept, body stored base64 of the raw bytes.
        resp_headers.append({"name": "Content-Encoding", "value": "gzip"})
        content["text"] = b64(gzip.compress(resp_text.encode(), mtime=0))
        content["encoding"] = "base64"
    entries.append({
        "startedDateTime": when(at),
        "time": 48.0,
        "request": req,
        "response": {
            "status": status,
            "statusText": "OK" if status == 200 else "",
            "httpVersion": req["httpVersion"],
            "headers": resp_headers,
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(resp_text),
        },
        "cache": {},
        "timings": {"send": 1, "wait": 40, "receive": 7},
        "serverIPAddress": "198.51.100.%d" % (len(entries) + 10),
    })


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# --- first launch, before the privacy dialog is answered -------------------------
entry(0.0, "GET", "https://api.example-shop.com/v1/config?platform=android&app_version=4.2.0",
      http2=True, resp_gzip=True,
      resp_text=json.dumps({"privacy_dialog": True, "features": ["feed", "cart"]}))
entry(0.3, "GET", "https://fonts.gstatic.com/s/roboto/v30/KFOmCnqEu92Fr1Mu4mxK.woff2",
      resp_mime="font/woff2", resp_text="")
entry(0.5, "POST", "https://app-measurement.com/a",
      body=json.dumps({"app_instance_id": "c1a5f0e2b7d94c3e8f6a2b1c0d9e8f7a",
                       "adid": AD_ID, "limit_ad_tracking": False,
                       "events": [{"name": "_first_open", "ts": 1795864500500}]}),
      mime=JSON, status=204, resp_text="")
entry(0.8, "POST", "https://graph.facebook.com/v16.0/1234567890/activities",
      body=urlencode({"event": "MOBILE_APP_INSTALL", "advertiser_id": AD_ID,
                      "advertiser_tracking_enabled": "1",
                      "application_tracking_enabled": "1",
                      "extinfo": json.dumps(["a2", "com.example.shop", "4.2.0"])}),
      mime=FORM)
entry(1.0, "POST", "https://ulogs.umeng.com/unify_logs",
      body=json.dumps({"header": {"appkey": "5f8e7d6c5b4a39281706f5e4",
                                  "imei_md5": md5(IMEI), "oaid": OAID,
                                  "mac": sha1(MAC), "os": "Android", "os_version": "14"},
                       "content": {"analytics": {"sessions": [{"id": "S1", "start": 1795864501}]}}}),
      mime=JSON)
entry(1.2, "POST", "https://api.example-shop.com/v1/device/register",
      body=json.dumps({"android_id": ANDROID_ID, "model": "Pixel 7", "locale": "zh_CN"}),
      mime=JSON, http2=True)
jpush_payload = b64(json.dumps({"platform": "a", "imei": IMEI, "sdk": "5.2.0"}))
entry(1.5, "GET", "https://sdk.jpush.cn/v3/report?appkey=0a1b2c3d4e5f&data=" + quote(jpush_payload))
entry(2.0, "GET", "https://img.exshop-cdn.net/banners/welcome@2x.png",
      resp_mime="image/png", resp_text="")
entry(3.0, "GET", "https://api.example-shop.com/v1/privacy/policy?lang=zh-CN", http2=True,
      resp_mime="text/html", resp_text="<html><body>Privacy policy</body></html>")

# --- the user taps "Disagree" at 10.25 s (consentry.toml) ------------------------
entry(10.6, "POST", "https://ulogs.umeng.com/unify_logs",
      body=json.dumps({"header": {"appkey": "5f8e7d6c5b4a39281706f5e4", "oaid": OAID},
                       "content": {"analytics": {"ekv": [{"id": "privacy_dialog_close"}]}}}),
      mime=JSON)
entry(15.0, "POST", "https://graph.facebook.com/v16.0/1234567890/activities",
      body=urlencode({"event": "CUSTOM_APP_EVENTS",
                      "ud[em]": sha256(EMAIL), "advertiser_id": AD_ID}),
      mime=FORM)
entry(16.0, "POST", "https://t.appsflyer.com/api/v6.3/androidevent?app_id=com.example.shop&buildnumber=6.12.1",
      body=json.dumps({"advertiserId": AD_ID, "android_id": ANDROID_ID,
                       "eventName": "af_app_opened", "deviceData": {"arch": "arm64"}}),
      mime=JSON)

# The app's own consent API records the refusal as a US Privacy opt-out ...
entry(17.0, "POST", "https://api.example-shop.com/v1/privacy/consent?us_privacy=1YYN",
      body=json.dumps({"choice": "reject_all"}), mime=JSON, http2=True)
# ... yet its ad SDK's bid request carries the advertising id and no consent signal.
entry(19.0, "POST", "https://hbopenbid.pubmatic.com/translator?source=prebid-server",
      body=json.dumps({"id": "b7f1c2", "imp": [{"id": "1", "banner": {"w": 320, "h": 50}}],
                       "app": {"bundle": "com.example.shop"},
                       "device": {"ifa": AD_ID, "os": "android"}}),
      mime=JSON)

# --- user accepts the basic-features policy at 30 s (consentry.toml) -------------
entry(35.0, "POST", "https://api.example-shop.com/v1/user/login", http2=True,
      body=json.dumps({"phone": PHONE, "code": "246810"}), mime=JSON)
entry(40.0, "POST", "https://api2.amplitude.com/2/httpapi",
      body=json.dumps({"api_key": "0123456789abcdef0123456789abcdef",
                       "events": [{"device_id": ANDROID_ID, "user_id": sha256(EMAIL),
                                   "event_type": "login"}]}),
      mime=JSON)
entry(45.0, "GET", "https://sdk.e.qq.com/launch?muidtype=1&muid=" + md5(IMEI) + "&appid=1101152570")
entry(50.0, "POST", "https://open.weixin.qq.com/connect/sdk/bind_phone",
      body=urlencode({"phone": PHONE.lstrip("+"), "appid": "wx0123456789abcdef"}), mime=FORM)
entry(55.0, "POST", "https://api.example-shop.com/v1/stores/nearby", http2=True,
      body=json.dumps({"lat": LAT, "lng": LON, "radius_km": 3}), mime=JSON)
entry(60.0, "POST", "https://kyc.example-verify.net/v2/check",
      body=json.dumps({"name_hash": "f" * 8, "id_number": RESIDENT_ID}), mime=JSON)
for i in range(6):
    entry(61.0 + i, "POST", "https://ulogs.umeng.com/heartbeat",
          body=json.dumps({"oaid": OAID, "seq": i}), mime=JSON, status=204, resp_text="")

# --- user withdraws all consent at 120 s (consentry.toml) ------------------------
entry(125.0, "POST", "https://api.example-shop.com/v1/device/heartbeat", http2=True,
      body=json.dumps({"android_id": ANDROID_ID}), mime=JSON)
entry(126.0, "POST", "https://o450000.ingest.sentry.io/api/5500000/envelope/",
      body=json.dumps({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}) + "\n"
      + json.dumps({"type": "event"}) + "\n"
      + json.dumps({"user": {"email": EMAIL}, "contexts": {"device": {"model": "Pixel 7"}}}),
      mime="application/x-sentry-envelope")
entry(127.0, "GET", "https://api.example-shop.com/v1/feed?page=2", http2=True)

har = {"log": {
    "version": "1.2",
    "creator": {"name": "consentry make_demo.py", "version": "1"},
    "pages": [],
    "entries": entries,
}}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.har")
with open(out, "w", encoding="utf-8") as f:
    json.dump(har, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote %s (%d entries)" % (out, len(entries)))
