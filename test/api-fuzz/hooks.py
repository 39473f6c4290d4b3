# Schemathesis hooks for `npm run test:api-fuzz` (loaded through SCHEMATHESIS_HOOKS by scripts/test-api-fuzz.sh).
#
# Each hook here removes one known false positive by teaching schemathesis what a valid value is. None of them
# turns a check off or widens what a check accepts: the service still gets every invalid value schemathesis makes.
import base64
import datetime
import hashlib
import json
import os
from urllib.parse import quote

import requests
import schemathesis
from hypothesis import strategies as st

from schemathesis import GenerationMode

# --- FHIR date formats ---------------------------------------------------------------------------------------
# False positive: the document's custom formats `fhir-date` and `fhir-date-time` (src/model/formats.ts) are
# unknown to schemathesis, so it treats them as "any string" and sends e.g. "" or "0" as *valid* data; the
# service rightly refuses those with 400 and positive_data_acceptance would report "Schema-valid request
# rejected". These strategies generate exactly what the formats accept: FHIR R4 date (YYYY, YYYY-MM,
# YYYY-MM-DD, a real calendar day, year 0001-9999) and dateTime (a date, or a full date with a time and a time
# zone, seconds 00-59, optional fraction of 1-9 digits, offsets -13:59..+14:00). Negative tests still send
# strings that break the formats.
_DAYS = st.dates(min_value=datetime.date(1, 1, 1), max_value=datetime.date(9999, 12, 31))


def _date_text(precision_and_day):
    precision, day = precision_and_day
    text = day.isoformat()
    return text[: {"year": 4, "month": 7, "day": 10}[precision]]


FHIR_DATE = st.tuples(st.sampled_from(["year", "month", "day"]), _DAYS).map(_date_text)

_TIME = st.tuples(
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.one_of(st.just(""), st.from_regex(r"\A\.[0-9]{1,9}\Z")),
).map(lambda t: f"{t[0]:02d}:{t[1]:02d}:{t[2]:02d}{t[3]}")
_ZONE = st.one_of(
    st.just("Z"),
    st.just("+14:00"),
    st.tuples(st.sampled_from("+-"), st.integers(0, 13), st.integers(0, 59)).map(
        lambda z: f"{z[0]}{z[1]:02d}:{z[2]:02d}"
    ),
)
FHIR_DATE_TIME = st.one_of(
    FHIR_DATE,
    st.tuples(_DAYS, _TIME, _ZONE).map(lambda t: f"{t[0].isoformat()}T{t[1]}{t[2]}"),
)

schemathesis.openapi.format("fhir-date", FHIR_DATE)
schemathesis.openapi.format("fhir-date-time", FHIR_DATE_TIME)


# --- Paging cursors ------------------------------------------------------------------------------------------
# False positive: `cursor` (GET /care-plans) and `since` (GET /care-plans/changes) are opaque cursors the
# service gave out earlier (src/care-plans/cursor.ts: base64url JSON of a keyset position); the document can
# only say "a string of at most 4096 characters", so schemathesis sends e.g. "0000..." as valid data, which the
# service rightly answers 400 "the cursor is not one this service gave out". In *positive* cases only, the
# generated value is replaced by a well-formed cursor (a position the service could have given out: the start of
# the feed, or a real instant with already-seen ids), chosen from the generated text so runs stay reproducible.
# Negative cases keep their generated cursors and must still be refused.
_CURSOR_PARAMETERS = {("GET", "/care-plans"): "cursor", ("GET", "/care-plans/changes"): "since"}


def _encode(position):
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _cursor_for(text):
    digest = hashlib.sha256(str(text).encode()).digest()
    if digest[0] % 3 == 0:
        return _encode({"t": "", "seen": []})
    year = 2000 + digest[1] % 40
    month = 1 + digest[2] % 12
    day = 1 + digest[3] % 28
    t = f"{year:04d}-{month:02d}-{day:02d}T{digest[4] % 24:02d}:{digest[5] % 60:02d}:{digest[6] % 60:02d}.{digest[7] % 1000:03d}Z"
    seen = [digest[8:12].hex() + "-" + digest[12:14].hex()] if digest[0] % 2 else []
    return _encode({"t": t, "seen": seen})


# --- If-Match and the body's version --------------------------------------------------------------------------
# False positive: every edit checks If-Match against the plan's current ETag, and a PUT also checks the body's
# `version` (the plan as GET returned it) against the current version: values that exist only on the server. The
# document can only say "a string", so generated values are stale and the service rightly answers 412. In
# *positive* cases the generated If-Match (when one is sent) and a PUT body's `version` (when it has one) are
# replaced by the plan's current ETag and version (from the service's last answer about that plan, else read with
# the run's credentials), so valid edits reach the edit logic. An If-Match left out stays out (the document has it optional), and negative cases keep
# their values.
_BASE_URL = os.environ.get("API_FUZZ_BASE_URL", "").rstrip("/")
_AUTHORIZATION = os.environ.get("API_FUZZ_AUTHORIZATION", "")


# The current ETag of each plan, learnt from the service's answers (every read and edit of a plan answers its
# ETag, W/"<version>"), so that a read is needed only for a plan not seen yet or after a 412.
_ETAGS = {}


def _current_etag(plan_id):
    if plan_id in _ETAGS:
        return _ETAGS[plan_id]
    headers = {"accept": "application/json"}
    if _AUTHORIZATION:
        headers["authorization"] = _AUTHORIZATION
    try:
        response = requests.get(f"{_BASE_URL}/care-plans/{quote(str(plan_id), safe='')}", headers=headers, timeout=30)
    except requests.RequestException:
        return None
    etag = response.headers.get("etag") if response.status_code == 200 else None
    if etag:
        _ETAGS[plan_id] = etag
    return etag


def _use_current_version(case):
    plan_id = (case.path_parameters or {}).get("id")
    if plan_id is None or not _BASE_URL:
        return
    headers = case.headers or {}
    if_match = next((key for key in headers if key.lower() == "if-match"), None)
    body_version = case.operation.method.upper() == "PUT" and isinstance(case.body, dict) and "version" in case.body
    if if_match is None and not body_version:
        return
    etag = _current_etag(plan_id)
    if not etag:
        return
    if if_match is not None:
        headers[if_match] = etag
    if body_version and etag.startswith('W/"') and etag.endswith('"'):
        case.body = {**case.body, "version": etag[3:-1]}


@schemathesis.hook
def after_call(ctx, case, response):
    plan_id = (case.path_parameters or {}).get("id")
    if plan_id is None or not case.operation.path.startswith("/care-plans/{id}"):
        return
    # schemathesis keeps a response's headers as lists of values.
    values = next((value for key, value in response.headers.items() if key.lower() == "etag"), None)
    etag = values[0] if isinstance(values, list) and values else values
    if response.status_code < 300 and isinstance(etag, str) and etag:
        _ETAGS[plan_id] = etag
    elif response.status_code in (404, 412):
        _ETAGS.pop(plan_id, None)


# --- __proto__ keys ------------------------------------------------------------------------------------------
# False positive: JSON bodies with a `__proto__` key (or a `constructor` key holding `prototype`) are refused
# with 400 on purpose (src/http/app.ts: Fastify's onProtoPoisoning/onConstructorPoisoning 'error'; README, Security).
# OpenAPI 3.0 cannot say so (it has no `propertyNames`), so schemathesis generates such keys in free-form objects
# (`unmappedFhir`, FHIR resources) as valid data. In *positive* cases these keys are dropped; negative cases keep
# them, and the service must still refuse them.
def _without_poisoning_keys(value):
    if isinstance(value, dict):
        return {
            key: _without_poisoning_keys(item)
            for key, item in value.items()
            if key != "__proto__" and not (key == "constructor" and isinstance(item, dict) and "prototype" in item)
        }
    if isinstance(value, list):
        return [_without_poisoning_keys(item) for item in value]
    return value


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    name = _CURSOR_PARAMETERS.get((case.operation.method.upper(), case.operation.path))
    if name is not None and case.query and name in case.query:
        case.query[name] = _cursor_for(case.query[name])
    if isinstance(case.body, (dict, list)):
        cleaned = _without_poisoning_keys(case.body)
        if cleaned != case.body:
            case.body = cleaned
    if case.operation.method.upper() in ("PUT", "PATCH", "POST", "DELETE"):
        _use_current_version(case)


# --- A schemathesis bug, not a false positive ----------------------------------------------------------------
# schemathesis 4.32.5 scans 2xx JSON bodies for same-origin URLs to learn links (engine/observations.py) and calls
# urllib's urlsplit on every string that starts with http:// or https://. A plan echoes what it was given, so a
# fuzzed reference such as "http://[0" comes back, urlsplit raises "Invalid IPv6 URL", and the whole run stops with
# an internal error (exit 2). Such a string is no link: it is skipped. Nothing about the service's answers changes.
from schemathesis.engine import observations as _observations  # noqa: E402

_same_origin_path = _observations._same_origin_path


def _same_origin_path_or_none(value, origin):
    try:
        return _same_origin_path(value, origin)
    except ValueError:
        return None


_observations._same_origin_path = _same_origin_path_or_none
